import { defineConfig } from "vitest/config";

// Unit tests of every package, and the core's integration tests against the
// real gateway (packages/client/test/gateway.test.ts: needs the
// `portfolio-dev` binary, built by `cargo build -p portfolio-dev`). React
// tests pick their DOM with a `@vitest-environment happy-dom` comment, and
// run twice: on React 19 (the dashboard's) and on React 18 (aliased, with
// the libraries that import React inlined so they see the alias too).
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "react19",
          include: ["packages/*/test/**/*.test.{ts,tsx}"],
          environment: "node",
          env: { EXPECT_REACT: "19" },
        },
      },
      {
        extends: true,
        resolve: { alias: { react: "react-18", "react-dom": "react-dom-18" } },
        test: {
          name: "react18",
          include: ["packages/react/test/**/*.test.tsx"],
          environment: "node",
          env: { EXPECT_REACT: "18" },
          setupFiles: ["packages/react/test/react18-setup.ts"],
          server: { deps: { inline: [/@tanstack\//, /@testing-library\//] } },
        },
      },
    ],
  },
});
