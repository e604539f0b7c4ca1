# Steps of a live migration between the nodes of hack/nodes, shared by the integration tests,
# `hack/bench migrate` and hack/demo. Source it after setting:
#   NODES_BIN  hack/nodes;  FX  the fixture directory (hack/nodes up FX);  FERRY  ferry's binary
#   CRIU       the CRIU both runtimes use (4.2 or newer: IP sockets on this kernel)
#   MEMSERVER  the static workload binary (hack/migrate/memserver.c)
#   CLIENT     hack/migrate/client.py
# shellcheck disable=SC2034
. "$FX/env"
PORT=7000
on() { "$NODES_BIN" run "$FX" "$@"; }

# bundle WHO ID MIB: the container's bundle on node WHO, at $NODE/bundle-ID: the busybox root
# with the workload serving PORT with MIB MiB of dirty memory, the container's network
# namespace by path, an rshared and an rslave volume from the node's shared mount, and the
# node's own cgroup parent. VOLUMES=0: without the volumes (runc cannot dump a volume with a
# host mount under it: CRIU calls that sharing unreachable unless told of external masters).
bundle() {
    local who=$1 id=$2 mib=$3 b=$NODES/$1/bundle-$2 cg
    [ "$who" = A ] && cg=$CG_A || cg=$CG_B
    rm -rf "$b"
    mkdir -p "$b"
    cp -a /opt/ferry/images/busybox/rootfs "$b/rootfs"
    cp "$MEMSERVER" "$b/rootfs/bin/memserver"
    mkdir -p "$b/rootfs/vol-shared" "$b/rootfs/vol-slave"
    (cd "$b" && /usr/bin/runc spec)
    jq --arg net "$NODE/ctr.net" --arg cg "$cg/$id" --arg sh "$NODE/shared/vol-shared" \
        --arg sl "$NODE/shared/vol-slave" --arg port "$PORT" --arg mib "$mib" '
        .process.terminal=false | del(.process.rlimits) | .root.readonly=false
        | .process.args=["/bin/memserver",$port,$mib]
        | .linux.namespaces |= map(if .type == "network" then .path = $net else . end)
        | .linux.cgroupsPath=$cg
        | .mounts += [{"destination":"/vol-shared","type":"bind","source":$sh,"options":["rbind","rshared"]},
                      {"destination":"/vol-slave","type":"bind","source":$sl,"options":["rbind","rslave"]}]' \
        "$b/config.json" >"$b/c.json"
    mv "$b/c.json" "$b/config.json"
    if [ "${VOLUMES:-1}" = 0 ]; then
        jq 'del(.mounts[] | select(.destination | startswith("/vol-")))' "$b/config.json" >"$b/c.json"
        mv "$b/c.json" "$b/config.json"
    fi
}

# rt WHO RUNTIME ARGS...: the runtime (ferry or runc) on node WHO, with that node's state root.
rt() {
    local who=$1 r=$2
    shift 2
    case $r in
        ferry) on "$who" "$FERRY" --root "$NODE/state" --criu "$CRIU" "$@" ;;
        runc) on "$who" /usr/bin/runc --root "$NODE/runc-state" --criu "$CRIU" "$@" ;;
    esac
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# client_start ID: the client (in its own namespace) talks to the container; returns once it
# is connected. client_stop ID: stop it and print its result (JSON).
client_start() {
    rm -f "$FX/client-$1".*
    # Its output goes to a file: a client still waiting on a dead connection must not hold
    # the caller's pipes.
    on client python3 "$CLIENT" "$CTR_ADDR" "$PORT" "$FX/client-$1.stop" "$FX/client-$1.json" \
        >"$FX/client-$1.log" 2>&1 &
    for _ in $(seq 200); do
        [ -e "$FX/client-$1.json.connected" ] && return 0
        [ -e "$FX/client-$1.json" ] && break
        sleep 0.05
    done
    echo "the client could not connect: $(cat "$FX/client-$1.json" 2>/dev/null)" >&2
    return 1
}
client_stop() {
    # A while of service on the new node first: the connection must work there, not only
    # have survived.
    sleep 0.5
    touch "$FX/client-$1.stop"
    for _ in $(seq 600); do
        [ -e "$FX/client-$1.json" ] && break
        sleep 0.05
    done
    cat "$FX/client-$1.json" 2>/dev/null || echo '{"error":"the client did not finish"}'
}

# start WHO RUNTIME ID MIB: bundle and container on node WHO, in a fresh container network
# namespace routed to WHO; returns once the workload serves.
start() {
    local who=$1 r=$2 id=$3 mib=$4
    "$NODES_BIN" ctr-net "$FX" "$who"
    "$NODES_BIN" route "$FX" "$who"
    bundle "$who" "$id" "$mib"
    # The container's stdio is /dev/null: a file of the node's would not exist on the other.
    rt "$who" "$r" --log "$NODE/run-$id.log" run -d --bundle "$NODE/bundle-$id" "$id" \
        </dev/null >/dev/null 2>&1 || { cat "$NODES/$who/run-$id.log" >&2; return 1; }
    for _ in $(seq 600); do
        on client bash -c "exec 3<>/dev/tcp/$CTR_ADDR/$PORT" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "the workload in $id never served" >&2
    return 1
}

PSPORT=7100
# migrate RUNTIME MODE ID: move container ID from node A to node B with RUNTIME (ferry, runc);
# MODE full (dump to A's disk, copy, restore), page-server (pages streamed to a CRIU page
# server on B), lazy (post-copy: restore on B at once, pages fetched from A on fault).
# Node B's network namespace and bundle are made before (as an orchestrator would); the
# router's route moves once B runs the container. Sets TOTAL_MS (until A is done) and
# A_BYTES (what the migration wrote to A's disk); on failure returns 1 with the reason on
# stderr.
migrate() {
    local r=$1 mode=$2 id=$3 img
    img=$NODE/img-$id
    rm -rf "$NODES/A/img-$id" "$NODES/B/img-$id"
    mkdir -p "$NODES/A/img-$id" "$NODES/B/img-$id"
    "$NODES_BIN" ctr-net "$FX" B 2>/dev/null || true
    bundle B "$id" 0
    # B's bundle runs the same workload; its argv is the checkpoint's anyway.
    local ck=(checkpoint --tcp-established --image-path "$img")
    local rs=(restore -d --tcp-established --image-path "$img" --bundle "$NODE/bundle-$id")
    local t0 ckpid=""
    t0=$(now_ms)
    case $mode in
        full)
            rt A "$r" "${ck[@]}" "$id" || return 1
            cp -a "$NODES/A/img-$id/." "$NODES/B/img-$id/"
            ;;
        page-server)
            on B "$CRIU" page-server -d --images-dir "$img" --address "$ADDR_B" --port $PSPORT \
                -o page-server.log >/dev/null || return 1
            rt A "$r" "${ck[@]}" --page-server "$ADDR_B:$PSPORT" "$id" || return 1
            cp -a "$NODES/A/img-$id/." "$NODES/B/img-$id/"
            ;;
        lazy)
            local fifo=$FX/status-$id
            rm -f "$fifo"
            mkfifo "$fifo"
            rt A "$r" "${ck[@]}" --lazy-pages --page-server "$ADDR_A:$PSPORT" --status-fd 9 "$id" \
                9>"$fifo" 2>"$FX/lazy-ck-$id.err" &
            ckpid=$!
            # One byte once the dump is done and A serves the pages; nothing if it failed.
            if [ "$(head -c1 "$fifo" | od -An -c | tr -d ' ')" != '\0' ]; then
                wait $ckpid
                cat "$FX/lazy-ck-$id.err" >&2
                return 1
            fi
            cp -a "$NODES/A/img-$id/." "$NODES/B/img-$id/"
            on B "$CRIU" lazy-pages -d --page-server --address "$ADDR_A" --port $PSPORT \
                --images-dir "$img" --work-dir "$img" -v4 -o lazy-pages.log >/dev/null || return 1
            rs+=(--lazy-pages)
            ;;
    esac
    A_BYTES=$(du -sb "$NODES/A/img-$id" | cut -f1)
    if ! rt B "$r" "${rs[@]}" "$id" </dev/null >/dev/null; then
        # The source ends its dump when the transfer breaks off; what it says comes last.
        if [ -n "$ckpid" ]; then
            wait $ckpid
            cat "$FX/lazy-ck-$id.err" >&2
        fi
        return 1
    fi
    "$NODES_BIN" route "$FX" B
    if [ -n "$ckpid" ]; then
        wait $ckpid || { cat "$FX/lazy-ck-$id.err" >&2; return 1; }
    fi
    TOTAL_MS=$(($(now_ms) - t0))
}

# probe_volumes WHO RUNTIME ID TAG: for each volume, what the container sees of node WHO's host
# mount under it (the node name in hostsub/node), and whether a mount the node makes now under
# the volume's source appears in the container: "vol-shared=B,live vol-slave=B,live".
probe_volumes() {
    local who=$1 r=$2 id=$3 tag=$4 pid out=""
    pid=$(rt "$who" "$r" state "$id" | jq -r .pid)
    for v in vol-shared vol-slave; do
        local seen live=dead
        seen=$(on "$who" cat "/proc/$pid/root/$v/hostsub/node" 2>/dev/null || echo none)
        on "$who" sh -c "mkdir -p $NODE/shared/$v/probe-$tag && mount -t tmpfs probe $NODE/shared/$v/probe-$tag"
        sleep 0.1
        on "$who" grep -q " /$v/probe-$tag " "/proc/$pid/mountinfo" && live=live
        on "$who" umount -l "$NODE/shared/$v/probe-$tag"
        out="$out $v=$seen,$live"
    done
    echo "${out# }"
}

# where ID: the nodes a container ID runs on, with runtime R ("A", "B", "A B" or "none").
where() {
    local r=$1 id=$2 w=""
    for n in A B; do
        [ "$(rt $n "$r" state "$id" 2>/dev/null | jq -r .status)" = running ] && w="$w $n"
    done
    w=${w# }
    echo "${w:-none}"
}
