#!/usr/bin/env node
// The `sendmail` command of the installed package (link /usr/sbin/sendmail to it), the same
// as `petrel sendmail`. Plain CommonJS in old syntax, like bin/petrel.cjs, so that any
// Node.js gets as far as the launcher.
'use strict';
require('./launch.cjs')('dist/core/cli/sendmail.js', process.argv.slice(2));
