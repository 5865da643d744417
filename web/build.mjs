// Bundles the dashboard: src/main.js (with uPlot and the styles it imports) into one minified
// JS and one CSS file named by their content hash, and index.html naming them.
//   node build.mjs [--outdir DIR]     (default: dist)
// DIR is emptied first, so it holds exactly the files the binary embeds
// (src/web/embed_assets.cmake): index.html and assets/app-<hash>.{js,css}.
import * as esbuild from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let outdir = join(here, 'dist');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--outdir' && i + 1 < args.length) outdir = resolve(args[++i]);
  else {
    console.error(`build.mjs: unknown argument ${args[i]}; usage: node build.mjs [--outdir DIR]`);
    process.exit(2);
  }
}

await rm(outdir, { recursive: true, force: true });
await mkdir(join(outdir, 'assets'), { recursive: true });
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome123', 'firefox120', 'safari17.5'], // CSS light-dark()
  outdir: join(outdir, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) {
  console.error(`build.mjs: expected one .js and one .css output, got ${outputs.join(', ')}`);
  process.exit(1);
}
const page = (await readFile(join(here, 'src/index.html'), 'utf8'))
  .replace('%APP_JS%', `/assets/${js}`)
  .replace('%APP_CSS%', `/assets/${css}`);
await writeFile(join(outdir, 'index.html'), page);
console.log(`dashboard: ${outdir}/index.html, assets/${js}, assets/${css}`);
