// Bundles src/runner.js once per extension tag, with the real @rancher/shell
// store and model classes and that tag's vendored model files, into
// dist/shell-<tag>.cjs. Every alias below replaces a module the save path does
// not use to build a body; README.md says why each leaves the body unchanged.
//
//   node build.mjs [outdir]
import * as esbuild from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] || path.join(here, 'dist'));
const shell = path.join(here, 'node_modules', '@rancher', 'shell');
const shim = (name) => path.join(here, 'shims', name);

// Modules replaced, by what the shell imports (README.md, "Aliases").
const SHIMS = [
  { filter: /plugins\/steve\/worker\/web-worker\.(basic|advanced)\.js$/, file: 'web-worker.js' },
];

const shims = {
  name: 'shims',
  setup(build) {
    for (const { filter, file } of SHIMS) {
      build.onResolve({ filter }, () => ({ path: shim(file) }));
    }
  },
};

export const TAGS = ['v1.0.4', 'v1.0.5'];

for (const tag of TAGS) {
  await esbuild.build({
    entryPoints: [path.join(here, 'src', 'runner.js')],
    outfile:     path.join(outdir, `shell-${ tag }.cjs`),
    bundle:      true,
    platform:    'node',
    format:      'cjs',
    target:      'node20',
    logLevel:    'warning',
    define:      { 'process.env.EXTENSION_VERSION': JSON.stringify(tag) },
    alias:       {
      '@shell': shell,
      '@pkg/harvester': path.join(here, 'third_party', 'harvester-ui-extension', tag, 'pkg', 'harvester'),
    },
    plugins:     [shims],
    loader: { '.svg': 'text', '.png': 'empty', '.scss': 'empty', '.css': 'empty' },
  });
}
