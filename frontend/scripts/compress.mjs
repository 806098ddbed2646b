// Writes .gz and .br next to every compressible file of dist/ (the binary
// serves them by Accept-Encoding), at the highest levels: done once per build.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const root = new URL("../dist/", import.meta.url).pathname;
const compressible = /\.(js|mjs|css|html|svg|json|txt|webmanifest|map)$/;
let files = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (compressible.test(name) && statSync(path).size >= 256) {
      const body = readFileSync(path);
      writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
      writeFileSync(
        `${path}.br`,
        brotliCompressSync(body, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: 11,
            [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
          },
        }),
      );
      files += 1;
    }
  }
}
walk(root);
console.log(`compressed ${files} files (gzip + brotli)`);
