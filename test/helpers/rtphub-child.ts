// Runs the rtphub command in this (child) process: `node --import tsx rtphub-child.ts --flags`.
import { main } from '../../src/cli/main';

main(process.argv.slice(2));
