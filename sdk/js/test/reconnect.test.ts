// A connection lost under the client: a TCP relay in front of the real gateway drops every
// socket it carries, and the client says so, reconnects and resumes.
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { Relaycast } from "../src/index.js";
import type { DisconnectedInfo, ReconnectingInfo } from "../src/index.js";
import { URL_, fresh, needsGateway, publish, waitFor } from "./gateway.js";

function relay(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, "127.0.0.1");
  return {
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    listening: new Promise((resolve) => server.once("listening", resolve)),
    drop: () => sockets.forEach((s) => s.destroy()),
    close: () => server.close(),
  };
}

describe.skipIf(needsGateway)("a lost connection", () => {
  const proxy = needsGateway ? null : relay(URL_);
  afterAll(() => proxy?.close());

  it("fires disconnected (willReconnect) and reconnecting, then resumes without a loss", async () => {
    await proxy!.listening;
    const rc = new Relaycast({ urls: [proxy!.url()], transports: ["websocket"], backoffBase: 50, backoffCap: 200 });
    const channel = fresh("lost.");
    const got: number[] = [];
    let live!: () => void;
    const subscribed = new Promise<void>((r) => (live = r));
    rc.subscribe<number>(channel, { message: (n) => got.push(n), subscribed: () => live() });
    await subscribed;
    await publish(channel, 1);
    await waitFor<void>((done) => {
      const timer = setInterval(() => got.length === 1 && (clearInterval(timer), done()), 20);
    });

    const lost = waitFor<DisconnectedInfo>((done) => rc.on("disconnected", done));
    const retry = waitFor<ReconnectingInfo>((done) => rc.on("reconnecting", done));
    const back = waitFor<unknown>((done) => rc.on("connected", done));
    proxy!.drop();
    expect((await lost).willReconnect).toBe(true);
    expect((await retry).attempt).toBe(1);
    await publish(channel, 2); // while the client is away
    await back;
    await waitFor<void>((done) => {
      const timer = setInterval(() => got.length === 2 && (clearInterval(timer), done()), 20);
    });
    expect(got).toEqual([1, 2]);
    expect(rc.reconnects).toBe(1);
    rc.close();
  });
});
