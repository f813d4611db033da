#!/usr/bin/env nu
# Check Prometheus: healthy, ready, and every scrape target up.

# Targets from /api/v1/targets that are not up, as "job instance: error".
export def down-targets [response: record]: nothing -> list<string> {
    $response.data.activeTargets | where health != "up" | each {|t|
        $"($t.labels.job) ($t.labels.instance): ($t.lastError? | default 'unknown')"
    }
}

def main [
    --url: string = "http://127.0.0.1:9090"  # server to check
    --json                                   # print the results as JSON
] {
    let healthy = (try { http get $"($url)/-/healthy" | ignore; true } catch { false })
    let ready = (try { http get $"($url)/-/ready" | ignore; true } catch { false })
    let down = if $ready { down-targets (http get $"($url)/api/v1/targets") } else { ["(not ready)"] }
    let results = [
        {check: "healthy", ok: $healthy, detail: $url}
        {check: "ready", ok: $ready, detail: $url}
        {check: "targets", ok: ($down | is-empty), detail: ($down | str join "; ")}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
