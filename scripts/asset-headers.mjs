// Trunk post_build hook (Trunk.toml): writes the static assets' security headers, `_headers`, into trunk's
// staging dir from the template `public/_headers`, replacing INLINE_SCRIPT_HASHES with the Content-Security-Policy
// hash of each inline <script> of the built index.html. Trunk inlines its wasm loader as a module script whose
// text names the hashed file names, so the hash changes with every build and is computed here, not written down.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const PLACEHOLDER = "INLINE_SCRIPT_HASHES";
const staging = process.env.TRUNK_STAGING_DIR;
if (!staging) {
  console.error("asset-headers: TRUNK_STAGING_DIR is not set (run by trunk as a post_build hook)");
  process.exit(1);
}

// The HTML parser turns CRLF into LF before a browser hashes a script's text; do the same.
const html = readFileSync(join(staging, "index.html"), "utf8").replace(/\r\n?/g, "\n");
const hashes = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi)]
  .filter(([, attributes]) => !/\bsrc\s*=/i.test(attributes))
  .map(([, , text]) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`);

const template = readFileSync("public/_headers", "utf8");
if (!template.includes(PLACEHOLDER)) {
  console.error(`asset-headers: public/_headers has no ${PLACEHOLDER}`);
  process.exit(1);
}
writeFileSync(join(staging, "_headers"), template.replaceAll(` ${PLACEHOLDER}`, hashes.map((h) => ` ${h}`).join("")));
console.log(`asset-headers: _headers allows ${hashes.length} inline script(s)`);
