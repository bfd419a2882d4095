// The browser cost of each client library, measured the same way: an entry
// that uses the library's client class, bundled by esbuild for browsers
// (ESM, minified, tree-shaken), then gzip -9. Prints a Markdown table
// (docs/client-js.md, "Size").
//   node scripts/size.mjs
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
const entries = [
  [
    "@portfolio-stream/client (ours, valibot included)",
    `import { PortfolioClient } from "./packages/client/src/index.ts"; globalThis.c = PortfolioClient;`,
  ],
  ["socket.io-client", `import { io } from "socket.io-client"; globalThis.c = io;`],
  ["centrifuge", `import { Centrifuge } from "centrifuge"; globalThis.c = Centrifuge;`],
];

console.log("| library | version | minified | minified + gzip |");
console.log("| --- | --- | ---: | ---: |");
for (const [name, contents] of entries) {
  const result = await build({
    stdin: { contents, resolveDir: here, loader: "ts" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    write: false,
    metafile: false,
    logLevel: "silent",
  });
  const code = result.outputFiles[0].contents;
  const pkg = name.startsWith("@portfolio") ? "packages/client/package.json" : `node_modules/${name}/package.json`;
  const { version } = (await import(`${here}${pkg}`, { with: { type: "json" } })).default;
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`| ${name} | ${version} | ${kib(code.length)} | ${kib(gzipSync(code, { level: 9 }).length)} |`);
}
