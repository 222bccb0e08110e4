const esbuild = require('esbuild');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const { environmentPlugin } = require('esbuild-plugin-environment');
esbuild.build({
  entryPoints: ['./entry.js'], outfile: '../../assets/plotly-pulseboard.min.js', format: 'iife', globalName: 'Plotly',
  bundle: true, minify: true, plugins: [InlineCSSPlugin(), environmentPlugin({ NODE_DEBUG: false })],
  alias: { stream: 'stream-browserify' }, define: { global: 'window', 'define.amd': 'false' }, target: 'es2016',
  banner: { js: '/* plotly.js v4.1.1 (MIT, Plotly, Inc.): core, scatter, bar, pie, heatmap, indicator, table */' },
}).then(() => console.log('built')).catch((e) => { console.error(e); process.exit(1); });
