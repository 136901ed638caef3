// Bundles src/ into dist/ (index.html, assets/app.js, assets/app.css), minified and
// deterministic: the same sources give byte-identical files. index.html refers to the
// assets with a content hash in the query string (?v=...), so a browser never mixes an
// old script with a new page, and no file name changes from build to build.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: "src/main.ts" },
  outdir: "dist/assets",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  legalComments: "none",
  sourcemap: false,
  charset: "utf8",
  metafile: true,
  logLevel: "warning",
});

const hash = (file) =>
  createHash("sha256").update(readFileSync(join(dist, file))).digest("hex").slice(0, 12);
const html = readFileSync(join(root, "src", "index.html"), "utf8")
  .replace("%APP_JS%", `assets/app.js?v=${hash("assets/app.js")}`)
  .replace("%APP_CSS%", `assets/app.css?v=${hash("assets/app.css")}`);
writeFileSync(join(dist, "index.html"), html);

for (const [file, info] of Object.entries(result.metafile.outputs)) {
  console.log(`${file}  ${(info.bytes / 1024).toFixed(1)} KiB`);
}
console.log(`dist/index.html  ${(html.length / 1024).toFixed(1)} KiB`);
