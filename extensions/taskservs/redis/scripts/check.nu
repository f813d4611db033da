#!/usr/bin/env nu
# Check Redis: answers PING, version, and memory use against maxmemory.

# Fields of `redis-cli INFO` output as a record (section headers and blanks skipped).
export def parse-info [text: string]: nothing -> record {
    $text | lines | where {|l| not ($l | str starts-with "#") and ($l | str contains ":") }
    | parse "{key}:{value}" | reduce --fold {} {|row, acc| $acc | upsert $row.key ($row.value | str trim) }
}

def main [
    --port: int = 6379  # server port
    --json              # print the results as JSON
] {
    let ping = (^redis-cli -p $port ping | complete | get stdout | str trim)
    let info = (parse-info (^redis-cli -p $port info | complete | get stdout))
    let used = ($info.used_memory? | default "0" | into int)
    let max = ($info.maxmemory? | default "0" | into int)
    let results = [
        {check: "ping", ok: ($ping == "PONG"), detail: $ping}
        {check: "version", ok: ("redis_version" in $info), detail: ($info.redis_version? | default "")}
        {check: "memory", ok: ($max == 0 or $used < $max), detail: $"($used) of ($max) bytes"}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
