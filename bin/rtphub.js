#!/usr/bin/env node
'use strict';
// The `rtphub` command: a thin launcher for the compiled CLI (run `npm run build` first).
require('../dist/src/cli/main.js').main(process.argv.slice(2));
