"""Publishers: the library any service uses, and the metrics, alerts and task processes."""

from publisher.publish import AsyncPublisher, PayloadTooLarge, Publisher

__all__ = ["AsyncPublisher", "PayloadTooLarge", "Publisher"]
