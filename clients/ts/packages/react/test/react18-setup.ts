// The React 18 test project (vitest.config.ts): vite's alias sends the
// tests' and the inlined libraries' imports of react and react-dom to the
// react-18 and react-dom-18 aliases; this sends the CommonJS `require`s
// inside those packages (react-dom requires react) the same way, so one
// React runs.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Module = require("node:module") as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const original = Module._resolveFilename;
Module._resolveFilename = function (request: string, ...rest: unknown[]) {
  const mapped = request.replace(/^react(?=$|\/)/, "react-18").replace(/^react-dom(?=$|\/)/, "react-dom-18");
  return original.call(this, mapped, ...rest);
};
