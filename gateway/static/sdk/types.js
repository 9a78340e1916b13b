// types.ts: the client's options, events and handler shapes (frames and channel payloads
// are in frames.ts, generated from the Python definitions).
export {};
