import { describe, expect, it } from "vitest";
import { Relaycast } from "../src/index.js";
import type { ConnectedInfo, DisconnectedInfo, ErrorFrame, ReconnectingInfo, TransportKind } from "../src/index.js";
import { URL_, fresh, needsGateway, publish, waitFor } from "./gateway.js";

describe.skipIf(needsGateway)("against a real gateway", () => {
  for (const transport of ["websocket", "poll"] as TransportKind[]) {
    it(`receives what is published, over ${transport}`, async () => {
      const rc = new Relaycast({ urls: [URL_], transports: [transport], pollWait: 2 });
      const channel = fresh("js.");
      const connected = waitFor<ConnectedInfo>((done) => rc.on("connected", done));
      const got = waitFor<unknown>((done) =>
        rc.subscribe(channel, {
          message: (data) => done(data),
          subscribed: () => void publish(channel, { n: 1 }),
        }),
      );
      expect((await connected).transport).toBe(transport);
      expect(await got).toEqual({ n: 1 });
      const closed = waitFor<DisconnectedInfo>((done) => rc.on("disconnected", done));
      rc.close();
      expect((await closed).willReconnect).toBe(false);
      expect(rc.state).toBe("disconnected");
    });
  }

  it("sends maxRate as the subscribe frame's max_rate and still receives", async () => {
    const rc = new Relaycast({ urls: [URL_], transports: ["websocket"] });
    const channel = fresh("metrics.js."); // a latest-value channel: the only kind with a pace
    const got = waitFor<unknown>((done) =>
      rc.subscribe(channel, { message: done, subscribed: () => void publish(channel, "x") }, { maxRate: 5 }),
    );
    expect(await got).toBe("x");
    rc.close();
  });

  it("hands the gateway's refusal of maxRate on an ordered channel to the error handler", async () => {
    const rc = new Relaycast({ urls: [URL_], transports: ["websocket"] });
    const channel = fresh("js.");
    const refused = waitFor<ErrorFrame>((done) =>
      rc.subscribe(channel, { message: () => undefined, error: done }, { maxRate: 5 }),
    );
    const frame = await refused;
    expect(frame.code).toBe("max_rate_unsupported");
    expect(frame.channel).toBe(channel);
    rc.close();
  });
});

describe("reconnecting", () => {
  // A port nothing listens on: every attempt is refused at once.
  const nowhere = "http://127.0.0.1:9";

  it("gives up after maxReconnectAttempts, saying so", async () => {
    const rc = new Relaycast({ urls: [nowhere], transports: ["poll"], backoffBase: 1, backoffCap: 5, maxReconnectAttempts: 2 });
    const attempts: ReconnectingInfo[] = [];
    rc.on("reconnecting", (info) => attempts.push(info));
    const gaveUp = await waitFor<DisconnectedInfo>((done) => rc.on("disconnected", done));
    expect(gaveUp.willReconnect).toBe(false);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
    for (const a of attempts) expect(a.delay).toBeGreaterThanOrEqual(0);
    expect(rc.state).toBe("disconnected");
  });

  it("does not reconnect with reconnect: false", async () => {
    const rc = new Relaycast({ urls: [nowhere], transports: ["poll"], reconnect: false });
    let reconnecting = 0;
    rc.on("reconnecting", () => reconnecting++);
    const stopped = await waitFor<DisconnectedInfo>((done) => rc.on("disconnected", done));
    expect(stopped.willReconnect).toBe(false);
    expect(reconnecting).toBe(0);
  });
});
