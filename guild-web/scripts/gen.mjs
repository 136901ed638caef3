// Regenerates src/gen/ from ../proto with protoc-gen-es, run by buf (both from npm: buf
// ships its binary in the npm package, so no system protoc and no network are needed).
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const template = {
  version: "v2",
  plugins: [
    {
      local: bin("protoc-gen-es"),
      out: "src/gen",
      opt: ["target=ts", "import_extension=none"],
      include_imports: false,
    },
  ],
};
rmSync(join(root, "src", "gen"), { recursive: true, force: true });
const r = spawnSync(bin("buf"), ["generate", "../proto", "--template", JSON.stringify(template)], {
  cwd: root,
  stdio: "inherit",
});
if (r.status !== 0) {
  console.error(`buf generate failed (${r.error ?? "exit " + r.status})`);
  process.exit(1);
}
