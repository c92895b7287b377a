#!/usr/bin/env node
// Finds LibTorch for both build systems (CMakeLists.txt and binding.gyp), in the order the design
// gives: LIBTORCH_DIR, the Python torch package's cmake prefix, then the system (libtorch-dev).
// Usage: node scripts/torch-paths.js <cmake-prefix|include|libdirs|libs|defines|cxx-standard|cxxflags|json>
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
  // The LibTorch root, or the cmake folder itself (what torch.utils.cmake_prefix_path prints).
  for (const candidate of ['share/cmake', 'lib/cmake', 'lib64/cmake', '.']) {
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
      if (dir) return { source: `python (${python})`, python, cmakePrefix: out, configDir: dir };
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

// The libstdc++ ABI LibTorch was built with (pip wheels changed it across 2.x): TorchConfig.cmake
// states it in TORCH_CXX_FLAGS; a Python torch also answers for itself. null: not stated.
function cxx11Abi(config, found) {
  const stated = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(config);
  if (stated) return Number(stated[1]);
  if (found.python) {
    try {
      const out = execFileSync(found.python, ['-c', 'import torch; print(int(torch.compiled_with_cxx11_abi()))'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 }).trim();
      if (out === '0' || out === '1') return Number(out);
    } catch { /* fall through */ }
  }
  return null;
}

// The C++ standard Torch's CMake files ask of dependents (cxx_std_NN or CXX_STANDARD NN), at least
// 17, which node-addon-api needs.
function cxxStandard(configDir) {
  let standard = 17;
  const dirs = [configDir, path.join(path.dirname(configDir), 'Caffe2')];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).filter((file) => file.endsWith('.cmake'))) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      for (const match of text.matchAll(/(?:cxx_std_|INTERFACE_CXX_STANDARD\s+"?|set\(CMAKE_CXX_STANDARD\s+)(\d\d)\b/g)) {
        standard = Math.max(standard, Number(match[1]));
      }
    }
  }
  return standard;
}

// MAJOR.MINOR.PATCH from the headers' TORCH_VERSION_* macros, e.g. "2.6.0".
function torchVersion(prefix) {
  const header = path.join(prefix, 'include/torch/csrc/api/include/torch/version.h');
  if (!fs.existsSync(header)) return null;
  const text = fs.readFileSync(header, 'utf8');
  const parts = ['MAJOR', 'MINOR', 'PATCH'].map((part) => new RegExp(`#define TORCH_VERSION_${part} (\\d+)`).exec(text)?.[1]);
  return parts.every(Boolean) ? parts.join('.') : null;
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
  const abi = cxx11Abi(config, found);
  const version = torchVersion(prefix);
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
      ...(abi !== null ? [`_GLIBCXX_USE_CXX11_ABI=${abi}`] : []),
      ...(glooDir ? ['VIDEO_RNN_WITH_GLOO=1', 'USE_DISTRIBUTED=1', 'USE_C10D_GLOO=1'] : []),
      ...(ncclDir ? ['VIDEO_RNN_WITH_NCCL=1', 'USE_C10D_NCCL=1'] : []),
    ],
    version,
    abi,
    cxxStandard: cxxStandard(found.configDir),
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
    case 'cxx-standard': return print(info.cxxStandard);
    case 'cxxflags': return print(`-std=c++${info.cxxStandard}`);
    case 'json': return print(JSON.stringify(info, null, 2));
    default:
      process.stderr.write(`unknown query ${what}\n`);
      process.exit(2);
  }
}

if (require.main === module) main();
module.exports = { locate, describe };
