#!/usr/bin/env nu
# Check containerd: binary version, service state and CRI socket.

# The containerd version from `containerd --version` ("containerd github.com/... v1.7.0 1e1ea6e..."), or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex 'v(?<v>\d+\.\d+\.\d+)' | get v.0? | default ""
}

# Whether version HAVE is at least WANT (both MAJOR.MINOR.PATCH).
export def version-at-least [have: string, want: string]: nothing -> bool {
    let h = ($have | split row "." | each {|p| $p | into int })
    let w = ($want | split row "." | each {|p| $p | into int })
    for i in 0..2 {
        if ($h | get $i) > ($w | get $i) { return true }
        if ($h | get $i) < ($w | get $i) { return false }
    }
    true
}

def main [
    --min-version: string = "1.7.0"                      # oldest acceptable containerd
    --socket: path = "/run/containerd/containerd.sock"   # CRI socket kubelet uses
    --json                                               # print the results as JSON
] {
    let version = (parse-version (^containerd --version | complete | get stdout))
    let active = (^systemctl is-active containerd | complete | get stdout | str trim)
    let results = [
        {check: "version", ok: (($version | is-not-empty) and (version-at-least $version $min_version)), detail: $"found '($version)', want >= ($min_version)"}
        {check: "service", ok: ($active == "active"), detail: $"systemd unit is ($active)"}
        {check: "socket", ok: ($socket | path exists), detail: $socket}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
