#!/usr/bin/env bash
# Builds and tests video-rnn against Debian 13 ("trixie"): LibTorch 2.6, g++ 14, ffmpeg 7.1,
# Python torch 2.6 as the reference. The chroot is made once with debootstrap from this machine's
# Debian mirror and kept under /var/cache, so later runs reuse it. Needs root.
#
#   bash scripts/debian13.sh create            # make (or finish) the chroot only
#   bash scripts/debian13.sh test [FILES...]   # copy this working tree in, npm ci, npm test (or FILES)
#   bash scripts/debian13.sh shell             # an interactive shell inside, with /proc, /sys, /dev mounted
#   bash scripts/debian13.sh run COMMAND...    # copy this working tree in, npm ci, then run COMMAND there
#                                              # (e.g. BENCH_WORK=/tmp/w bench/targets.sh: LibTorch 2.6 against torch 2.6)
#   bash scripts/debian13.sh times             # the slowest test files of the last test run inside
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${VIDEO_RNN_CHROOT:-/var/cache/video-rnn/debian13}
PACKAGES=(ca-certificates nodejs npm g++ make cmake ninja-build git python3 ffmpeg libtorch-dev libgloo-dev
  libopenblas0-pthread python3-torch python3-torchvision iproute2 procps)

die() { echo "debian13: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"

mirror() {
  local uri
  uri=$(grep -m1 -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}') || true
  [ -n "$uri" ] || uri=$(grep -m1 -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

mounted=()
unmount_all() {
  local i
  # Recursive: the chroot's own mounts (ip netns leaves /run/netns) go with the ones made here.
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}
trap unmount_all EXIT INT TERM

mount_all() {
  local dir
  # The chroot's / must be a mount point: `ip netns exec` (the two-machine tests) remounts / as a
  # slave and fails with "Invalid argument" otherwise. Private, so nothing mounted inside shows
  # up twice through the host's shared /.
  if ! mountpoint -q "$ROOT"; then
    mount --bind "$ROOT" "$ROOT"
    mount --make-private "$ROOT"
    mounted+=("$ROOT")
  fi
  for dir in proc sys dev dev/pts; do
    mkdir -p "$ROOT/$dir"
    mountpoint -q "$ROOT/$dir" && continue
    case $dir in
      proc) mount -t proc proc "$ROOT/proc" ;;
      sys) mount -t sysfs sys "$ROOT/sys" ;;
      dev) mount --bind /dev "$ROOT/dev" ;;
      dev/pts) mount --bind /dev/pts "$ROOT/dev/pts" ;;
    esac
    mounted+=("$ROOT/$dir")
  done
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  # This machine's extra CA certificates (a proxy's) must be trusted inside too, or npm fails
  # with SELF_SIGNED_CERT_IN_CHAIN.
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
    [ -x "$ROOT/usr/sbin/update-ca-certificates" ] && chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
  fi
}

inside() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive CI="${CI:-}" VIDEO_RNN_TEST_TIMEOUT_MS="${VIDEO_RNN_TEST_TIMEOUT_MS:-}" npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$@"; }

create() {
  # The marker holds the package list it was made with: a changed list installs what is new.
  [ "$(cat "$ROOT/.video-rnn-ready" 2>/dev/null)" = "${PACKAGES[*]}" ] && return 0
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || { apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap; }
    rm -rf "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    echo "debian13: debootstrap trixie into $ROOT from $(mirror)"
    debootstrap --variant=minbase trixie "$ROOT" "$(mirror)"
  fi
  mount_all
  echo "debian13: installing ${PACKAGES[*]}"
  inside apt-get update
  inside apt-get install -y --no-install-recommends "${PACKAGES[@]}"
  inside apt-get clean
  echo "${PACKAGES[*]}" > "$ROOT/.video-rnn-ready"
}

# A copy of this working tree (tracked and untracked, not ignored), and shared/ beside it as CI has it.
copy_tree() {
  local work="$ROOT/work"
  mkdir -p "$work/video-rnn"
  # Everything of the last copy goes but its native build folder, which a rerun then builds incrementally.
  find "$work/video-rnn" -mindepth 1 -maxdepth 1 ! -name build-cmake -exec rm -rf {} +
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work/video-rnn"
  if [ -d ../shared ]; then rm -rf "$work/shared"; cp -r ../shared "$work/shared"; fi
  # tar keeps each file's time, so a source that differs from the last build's but is older than its
  # object (another commit checked out) would not be rebuilt: such files are touched.
  local file kept="$work/built-sources"
  while IFS= read -r -d '' file; do
    cmp -s "$work/video-rnn/$file" "$kept/$file" || touch "$work/video-rnn/$file"
  done < <(cd "$work/video-rnn" && find native CMakeLists.txt -type f -print0)
  rm -rf "$kept" && mkdir -p "$kept" && (cd "$work/video-rnn" && cp -r --parents native CMakeLists.txt "$kept/")
}

case "${1:-test}" in
  create) create ;;
  shell) create; mount_all; inside bash -l ;;
  run)
    shift || true
    [ "$#" -gt 0 ] || die "run needs a command"
    create
    mount_all
    copy_tree
    inside bash -c 'cd /work/video-rnn && npm ci && npx tsc -p tsconfig.json && "$@"' debian13 "$@"
    ;;
  test)
    shift || true
    create
    mount_all
    copy_tree
    inside bash -c 'cd /work/video-rnn && echo "debian13: $(node --version), $(g++ --version | head -1), $(ffmpeg -version | head -1)" && npm ci && \
      if [ "$#" -gt 0 ]; then npx tsc -p tsconfig.json && mkdir -p .tmp && node --test --test-concurrency=1 \
        ${VIDEO_RNN_TEST_TIMEOUT_MS:+--test-timeout=$VIDEO_RNN_TEST_TIMEOUT_MS} --test-reporter=tap --test-reporter-destination=stdout \
        --test-reporter=./scripts/test-times-reporter.mjs --test-reporter-destination=.tmp/test-times.tsv "$@"; else npm test; fi' debian13 "$@"
    ;;
  times) bash scripts/test-times.sh --report "$ROOT/work/video-rnn/.tmp/test-times.tsv" ;;
  *) die "unknown command $1 (create, test, run, shell, times)" ;;
esac
