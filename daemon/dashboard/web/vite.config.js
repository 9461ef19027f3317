// Builds the dashboard into ../../../build-web (scripts/build runs it once per checkout; CMake
// embeds that directory into evald, see cmake/EmbedDashboard.cmake). Files under assets/ are
// named by their content hash (evald serves them as immutable); index.html is revalidated.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  base: '/',
  build: {
    outDir: process.env.EVALD_WEB_OUT || '../../../build-web',
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
