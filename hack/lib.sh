# Shared helpers for ferry's scripts. Source it; it defines functions and paths only.

FERRY_PREFIX=${FERRY_PREFIX:-/opt/ferry}
CRIU_PREFIX=${CRIU_PREFIX:-$FERRY_PREFIX/criu}
IMAGES_DIR=${IMAGES_DIR:-$FERRY_PREFIX/images}
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

say() { printf '\033[1m[ferry]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[ferry] error:\033[0m %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (the tests make namespaces, mounts and containers)"; }

# The Debian archive URI this machine's own apt uses (never hard-coded in the repository).
debian_mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri=$(awk '
            /^URIs:/ { u=$2 }
            /^Suites:/ { for (i=2;i<=NF;i++) if ($i !~ /-security$/ && $i !~ /-updates$/ && $i !~ /-backports$/) { print u; exit } }
        ' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' | head -n1)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list | head -n1)
    fi
    [ -n "$uri" ] || die "cannot find a Debian archive URI in this machine's apt sources"
    echo "$uri"
}
