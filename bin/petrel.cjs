#!/usr/bin/env node
// The `petrel` command of the installed package. Plain CommonJS in old
// syntax on purpose: it must parse and run on any Node.js, to say what is
// wrong on one too old for Petrel instead of failing with a stack trace.
'use strict';
require('./launch.cjs')('dist/core/cli/petrel.js', process.argv.slice(2));
