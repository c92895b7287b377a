#!/usr/bin/env node
// Prints -fopenmp when the C++ compiler node-gyp will use ($CXX, else make's default g++) compiles
// and links an OpenMP program with it, and nothing otherwise, for binding.gyp: without OpenMP the
// addon still builds, and its Winograd convolutions run on one thread (native/winograd.h).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function compilerHasOpenmp() {
  const [compiler, ...flags] = (process.env.CXX || 'g++').split(/\s+/).filter(Boolean);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-openmp-'));
  try {
    const source = path.join(dir, 'probe.cc');
    fs.writeFileSync(source, '#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n');
    execFileSync(compiler, [...flags, '-fopenmp', source, '-o', path.join(dir, 'probe')], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(compilerHasOpenmp() ? '-fopenmp\n' : '\n');
