// index.ts: the package's entry point (`import { Relaycast } from "relaycast"`).

export type * from "./frames.js";
export { backoffDelay, Relaycast } from "./relaycast.js";
export type { ResolvedOptions } from "./relaycast.js";
export { openRelaycast, SharedRelaycast } from "./relaycast-shared.js";
export { dispatchTaskEvent, followProject, followTask } from "./tasks.js";
export type { TaskHandlers } from "./tasks.js";
export type * from "./types.js";
