import { defineConfig } from "vitest/config";

// Node 20 has a WebSocket only behind a flag (22 has it by default).
export default defineConfig({
  test: {
    include: ["test/**/*.test.{ts,tsx}"],
    pool: "forks",
    poolOptions: { forks: { execArgv: ["--experimental-websocket"] } },
    testTimeout: 20000,
  },
});
