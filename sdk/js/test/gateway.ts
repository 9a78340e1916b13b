// The gateway the tests talk to: RELAYCAST_TEST_URL, set by tests/test_js_sdk.py, which
// starts Redis and a gateway on free ports (or by hand: `relaycast up`, then the URL).
export const URL_ = process.env.RELAYCAST_TEST_URL ?? "";
export const needsGateway = !URL_;

/** A channel name no other test uses. */
export function fresh(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

export async function api(path: string, body: unknown): Promise<any> {
  const response = await fetch(`${URL_}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

export function publish(channel: string, data: unknown): Promise<{ offset: number }> {
  return api("/api/publish", { channel, data });
}

/** Resolve with the first value `arm` hands to its callback; fail after `ms`. */
export function waitFor<T>(arm: (done: (value: T) => void) => void, ms = 10000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    arm((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
