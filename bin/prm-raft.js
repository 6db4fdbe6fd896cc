#!/usr/bin/env node
// The compiled CLI; `make build` (run by `make demo` and `make test`) produces dist/.
import '../dist/cli/main.js';
