#!/usr/bin/env bash
# Gives a Debian 12 (bookworm) machine without a GPU a WebGPU adapter for the `webgpu` backend: Mesa's
# software Vulkan driver (llvmpipe/lavapipe) from bookworm-backports. Debian 12's own Mesa 22.3 lacks a
# Vulkan feature Dawn requires ("shaderUniform*ArrayDynamicIndexing"), so Dawn finds no adapter with it;
# Mesa ≥ 23 works. Idempotent and cheap when already done (one dpkg query); never fails: whatever goes
# wrong is printed as one line and the webgpu tests then skip and say why.
# Usage (as root): scripts/install-webgpu-adapter.sh
set -u

say() { echo "install-webgpu-adapter: $*"; }

if [ "$(uname -s)" != Linux ] || [ ! -r /etc/os-release ]; then say "not Linux; nothing to do"; exit 0; fi
# shellcheck disable=SC1091
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
  say "only for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}; install a Vulkan driver (Mesa >= 23 for a software one) yourself"
  exit 0
fi

installed_mesa() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null; }
mesa_is_new_enough() {
  local v
  v=$(installed_mesa) && [ -n "$v" ] && dpkg --compare-versions "$v" ge 23 &&
    dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'
}

if mesa_is_new_enough; then say "mesa-vulkan-drivers $(installed_mesa) already installed"; exit 0; fi
if [ "$(id -u)" != 0 ]; then say "needs root (apt-get); skipped"; exit 0; fi
if ! command -v apt-get >/dev/null; then say "no apt-get; skipped"; exit 0; fi

# The backports suite of the Debian mirror this machine already uses (deb822 or one-line format).
backports_list=/etc/apt/sources.list.d/bookworm-backports-webgpu.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=$(awk '
    function stanza_end() { if (bookworm && uris != "" && found == "") found = uris; bookworm = 0; uris = "" }
    FNR == 1 || /^[ \t]*$/ { stanza_end() }
    /^URIs:/ { uris = $2 }
    /^Suites:/ && /[ \t]bookworm([ \t]|$)/ { bookworm = 1 }
    END { stanza_end(); print found }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" { sub(/^deb[ \t]+(\[[^]]*\][ \t]+)?/, ""); split($0, f, " "); if (f[2] == "bookworm") { print f[1]; exit } }' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then say "found no Debian bookworm source in /etc/apt to add bookworm-backports to; skipped"; exit 0; fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$backports_list" || { say "cannot write $backports_list; skipped"; exit 0; }
  say "added bookworm-backports of $uri ($backports_list)"
fi

export DEBIAN_FRONTEND=noninteractive
# Fail fast where the mirror cannot be reached rather than hold CI up.
apt_net=(-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=1)
if ! apt-get "${apt_net[@]}" update -qq >/tmp/install-webgpu-adapter.log 2>&1; then
  say "apt-get update failed (see /tmp/install-webgpu-adapter.log); skipped"; exit 0
fi
if ! apt-get "${apt_net[@]}" install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 \
  >>/tmp/install-webgpu-adapter.log 2>&1; then
  say "apt-get install -t bookworm-backports mesa-vulkan-drivers failed (see /tmp/install-webgpu-adapter.log); skipped"; exit 0
fi
if mesa_is_new_enough; then say "installed mesa-vulkan-drivers $(installed_mesa)"; else say "mesa-vulkan-drivers is still $(installed_mesa)"; fi
exit 0
