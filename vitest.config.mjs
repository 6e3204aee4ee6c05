// The suite runs in a space of its own (test/global-setup.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { globalSetup: ['test/global-setup.ts'] } });
