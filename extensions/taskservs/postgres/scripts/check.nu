#!/usr/bin/env nu
# Check PostgreSQL: accepting connections and the expected major version.

# The server version from `psql --version` or `postgres --version` ("psql (PostgreSQL) 16.1"), or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex '\(PostgreSQL\) (?<v>\d+(\.\d+)?)' | get v.0? | default ""
}

# pg_isready's exit code as words.
export def isready-status [code: int]: nothing -> string {
    match $code {
        0 => "accepting connections"
        1 => "rejecting connections (starting up?)"
        2 => "no response"
        _ => "no attempt made (bad parameters)"
    }
}

def main [
    --host: string = "127.0.0.1"  # server address
    --port: int = 5432            # server port
    --major: int = 16             # expected major version
    --json                        # print the results as JSON
] {
    let ready = (^pg_isready -h $host -p $port | complete)
    let version = (parse-version (^psql --version | complete | get stdout))
    let results = [
        {check: "ready", ok: ($ready.exit_code == 0), detail: (isready-status $ready.exit_code)}
        {check: "version", ok: ($version | str starts-with $"($major)"), detail: $"found '($version)', want ($major).x"}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
