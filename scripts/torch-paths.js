#!/usr/bin/env node
// Finds LibTorch for both build systems (CMakeLists.txt and binding.gyp), in the order the design
// gives: LIBTORCH_DIR, the Python torch package's cmake prefix, then the system (libtorch-dev).
// Usage: node scripts/torch-paths.js <cmake-prefix|include|libdirs|libs|defines|json>
// (`include` and `defines` also say whether c10d's Gloo and NCCL process groups can be built.)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const HOW_TO_GET =
  'video-rnn needs LibTorch and none was found. Get one of:\n' +
  '  - Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
  '  - an unpacked LibTorch (pytorch.org): export LIBTORCH_DIR=/path/to/libtorch\n' +
  '  - a Python torch package (pip install torch): it is found through torch.utils.cmake_prefix_path\n' +
  'then run npm install (or npm rebuild video-rnn) again.';

// A TorchConfig.cmake lives in <prefix>/share/cmake/Torch (LibTorch, pip) or
// <prefix>/lib/<multiarch>/cmake/Torch (Debian); the config derives its install prefix from that.
function configDirIn(cmakeDir) {
  const dir = path.join(cmakeDir, 'Torch');
  return fs.existsSync(path.join(dir, 'TorchConfig.cmake')) ? dir : null;
}

function fromLibtorchDir(root) {
  for (const candidate of ['share/cmake', 'lib/cmake', 'lib64/cmake']) {
    const dir = configDirIn(path.join(root, candidate));
    if (dir) return { source: 'LIBTORCH_DIR', cmakePrefix: path.dirname(dir), configDir: dir };
  }
  return null;
}

function fromPython() {
  const pythons = [process.env.VIDEO_RNN_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
  for (const python of pythons) {
    try {
      const out = execFileSync(python, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 }).trim();
      const dir = out && configDirIn(out);
      if (dir) return { source: `python (${python})`, cmakePrefix: out, configDir: dir };
    } catch {
      // This interpreter has no torch; try the next one.
    }
  }
  return null;
}

function fromSystem() {
  const roots = ['/usr/local/lib', '/usr/lib', '/usr/local/share/cmake', '/usr/share/cmake'];
  let multiarch = null;
  try {
    multiarch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch { /* not Debian-like */ }
  const cmakeDirs = [];
  for (const root of roots) {
    if (multiarch && root.endsWith('/lib')) cmakeDirs.push(path.join(root, multiarch, 'cmake'));
    cmakeDirs.push(root.endsWith('cmake') ? root : path.join(root, 'cmake'));
  }
  for (const cmakeDir of cmakeDirs) {
    const dir = configDirIn(cmakeDir);
    if (dir) return { source: 'system', cmakePrefix: cmakeDir, configDir: dir };
  }
  return null;
}

function locate() {
  const explicit = process.env.LIBTORCH_DIR;
  if (explicit) {
    const found = fromLibtorchDir(path.resolve(explicit));
    if (!found) throw new Error(`LIBTORCH_DIR=${explicit} holds no share/cmake/Torch/TorchConfig.cmake.\n${HOW_TO_GET}`);
    return found;
  }
  const found = fromPython() || fromSystem();
  if (!found) throw new Error(HOW_TO_GET);
  return found;
}

// Upstream TorchConfig.cmake sits three levels below its prefix, Debian's four: take the level
// that holds the C++ API headers, so gyp builds see what CMake builds see.
function describe(found) {
  const prefix = ['../../..', '../../../..'].map((up) => path.resolve(found.configDir, up))
    .find((dir) => fs.existsSync(path.join(dir, 'include/torch/csrc/api/include')));
  if (!prefix) throw new Error(`${found.configDir} has no LibTorch headers beside it.\n${HOW_TO_GET}`);
  const libDir = [path.join(prefix, 'lib'), path.resolve(found.configDir, '../..')]
    .find((dir) => fs.existsSync(dir) && fs.readdirSync(dir).some((name) => name.startsWith('libtorch.so')));
  if (!libDir) throw new Error(`${found.configDir} has no libtorch.so beside it.\n${HOW_TO_GET}`);
  const hasCuda = fs.readdirSync(libDir).some((name) => name.startsWith('libtorch_cuda'));
  const config = fs.readFileSync(path.join(found.configDir, 'TorchConfig.cmake'), 'utf8');
  const abi = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(config);
  // c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev; pip and LibTorch
  // archives ship them under include/). NCCL is used only with a CUDA build whose nccl.h is found.
  const headerDirs = [path.join(prefix, 'include'), '/usr/include', '/usr/local/include'];
  const glooDir = headerDirs.find((dir) => fs.existsSync(path.join(dir, 'gloo', 'algorithm.h')));
  const ncclDirs = [...headerDirs, '/usr/local/cuda/include', path.resolve(prefix, '../nvidia/nccl/include')];
  const ncclDir = hasCuda ? ncclDirs.find((dir) => fs.existsSync(path.join(dir, 'nccl.h'))) : undefined;
  const extraIncludes = [glooDir, ncclDir].filter((dir) => dir && !headerDirs.slice(1).includes(dir) && dir !== path.join(prefix, 'include'));
  return {
    ...found,
    prefix,
    includeDirs: [path.join(prefix, 'include'), path.join(prefix, 'include/torch/csrc/api/include'), ...extraIncludes],
    libDir,
    libs: ['torch', 'torch_cpu', 'c10', ...(hasCuda ? ['torch_cuda', 'c10_cuda'] : [])],
    defines: [
      ...(abi ? [`_GLIBCXX_USE_CXX11_ABI=${abi[1]}`] : []),
      ...(glooDir ? ['VIDEO_RNN_WITH_GLOO=1', 'USE_DISTRIBUTED=1', 'USE_C10D_GLOO=1'] : []),
      ...(ncclDir ? ['VIDEO_RNN_WITH_NCCL=1', 'USE_C10D_NCCL=1'] : []),
    ],
    gloo: Boolean(glooDir),
    nccl: Boolean(ncclDir),
    cuda: hasCuda,
  };
}

function main() {
  const what = process.argv[2] || 'json';
  let info;
  try {
    info = describe(locate());
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const print = (value) => process.stdout.write(`${value}\n`);
  switch (what) {
    case 'cmake-prefix': return print(info.cmakePrefix);
    case 'include': return print(info.includeDirs.join(' '));
    case 'libdirs': return print(info.libDir);
    case 'libs': return print([`-L${info.libDir}`, `-Wl,-rpath,${info.libDir}`, ...info.libs.map((l) => `-l${l}`)].join(' '));
    case 'defines': return print(info.defines.join(' '));
    case 'json': return print(JSON.stringify(info, null, 2));
    default:
      process.stderr.write(`unknown query ${what}\n`);
      process.exit(2);
  }
}

if (require.main === module) main();
module.exports = { locate, describe };
