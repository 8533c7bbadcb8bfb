// Starts a Petrel program (the CLI) on a Node.js that Petrel supports.
//
// - On a Node.js new enough (package.json "engines"), the program runs in
//   this process.
// - On an older one, it runs on the Node.js that came with the package (the
//   optional dependency on the npm package `node`), as a child process that
//   gets this process's arguments, input and output, and the signals sent to
//   it; its exit status becomes ours.
// - Without either, one line says which version is needed.
//
// Plain CommonJS in old syntax (var, function, no arrow functions or
// template strings): this file must parse on any Node.js.
'use strict';

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');
var url = require('url');

var PACKAGE_ROOT = path.join(__dirname, '..');
/** Signals passed on to the child; SIGHUP reloads the config, SIGTERM/SIGINT stop it. */
var FORWARDED = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'];

function parseVersion(text) {
  var match = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  return match ? [Number(match[1]), Number(match[2] || 0), Number(match[3] || 0)] : [0, 0, 0];
}

function atLeast(version, minimum) {
  for (var i = 0; i < 3; i++) {
    if (version[i] !== minimum[i]) return version[i] > minimum[i];
  }
  return true;
}

/** The lowest version `engines.node` allows (">=22.19" → 22.19.0). */
function minimumNode() {
  var manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8'));
  var range = (manifest.engines && manifest.engines.node) || '>=0';
  return { text: range.replace(/^>=\s*/, ''), version: parseVersion(range) };
}

/**
 * The node binary of the `node` package installed with Petrel, when there is
 * one new enough (that package's version is the version of the Node.js it
 * holds).
 */
function bundledNode(minimum) {
  try {
    var manifestFile = require.resolve('node/package.json', { paths: [PACKAGE_ROOT] });
    var manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    var binary = path.join(path.dirname(manifestFile), 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
    return atLeast(parseVersion(manifest.version), minimum) && fs.existsSync(binary) ? binary : undefined;
  } catch (error) {
    return undefined;
  }
}

// import() written out would be a syntax error for the oldest Node.js versions,
// which must still get to the message below.
var dynamicImport = new Function('specifier', 'return import(specifier)');

function runHere(program, args) {
  process.argv = [process.argv[0], program].concat(args);
  dynamicImport(url.pathToFileURL(program).href).catch(function (error) {
    process.stderr.write('petrel: ' + (error && error.stack ? error.stack : String(error)) + '\n');
    process.exitCode = 1;
  });
}

function runOn(node, program, args) {
  var child = childProcess.spawn(node, [program].concat(args), { stdio: 'inherit' });
  var handlers = {};
  FORWARDED.forEach(function (signal) {
    handlers[signal] = function () {
      child.kill(signal);
    };
    process.on(signal, handlers[signal]);
  });
  child.on('error', function (error) {
    process.stderr.write('petrel: cannot run ' + node + ': ' + error.message + '\n');
    process.exit(1);
  });
  child.on('exit', function (code, signal) {
    FORWARDED.forEach(function (name) {
      process.removeListener(name, handlers[name]);
    });
    if (signal) process.kill(process.pid, signal);
    else process.exit(code === null ? 1 : code);
  });
}

module.exports = function launch(programPath, args) {
  var program = path.join(PACKAGE_ROOT, programPath);
  var minimum = minimumNode();
  if (atLeast(parseVersion(process.versions.node), minimum.version)) return runHere(program, args);
  var node = bundledNode(minimum.version);
  if (node) return runOn(node, program, args);
  process.stderr.write(
    'petrel: needs Node.js ' + minimum.text + ' or newer, this is ' + process.version +
      ' (install Node.js 24 LTS, or reinstall petrel with its optional dependencies so it brings its own)\n'
  );
  process.exitCode = 1;
};
