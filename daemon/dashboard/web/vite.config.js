// Builds the dashboard into ../../../build-web (scripts/build runs it once per checkout; CMake
// embeds that directory into evald, see cmake/EmbedDashboard.cmake). File names carry no hashes
// so that the embedded asset table and the build are reproducible and easy to diff.
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
    rollupOptions: {
      output: {
        entryFileNames: 'assets/app.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/[name][extname]',
      },
    },
  },
});
