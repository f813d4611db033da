#!/usr/bin/env nu
# Write prometheus.yml from the taskserv settings, validate it with promtool and reload.

# prometheus.yml as a record.
export def build-config [s: record]: nothing -> record {
    let jobs = ($s.scrape_jobs | each {|j|
        let base = {
            job_name: $j.job_name
            metrics_path: ($j.metrics_path? | default "/metrics")
            scheme: ($j.scheme? | default "http")
            static_configs: [{targets: $j.targets, labels: ($j.labels? | default {})}]
        }
        if ($j.scrape_interval? | is-empty) { $base } else { $base | insert scrape_interval $j.scrape_interval }
    })
    let alerting = if ($s.alertmanagers | is-empty) { {} } else {
        {alerting: {alertmanagers: [{static_configs: [{targets: $s.alertmanagers}]}]}}
    }
    {
        global: {scrape_interval: $s.scrape_interval, evaluation_interval: $s.evaluation_interval, external_labels: $s.external_labels}
        scrape_configs: $jobs
    } | merge $alerting
}

# The server flags for the systemd unit.
export def server-flags [s: record]: nothing -> list<string> {
    let size = if ($s.retention_size_gb? | is-empty) { [] } else { [$"--storage.tsdb.retention.size=($s.retention_size_gb)GB"] }
    [
        $"--config.file=($s.config_dir)/prometheus.yml"
        $"--storage.tsdb.path=($s.data_dir)"
        $"--storage.tsdb.retention.time=($s.retention_time)"
        $"--web.listen-address=:($s.port)"
        "--web.enable-lifecycle"
    ] ++ $size
}

def main [
    --settings: path                                # JSON or YAML with the Prometheus schema's values
    --config: path = "/etc/prometheus/prometheus.yml"  # file to write
    --dry-run                                       # print the file instead of writing it
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let s = (open $settings)
    let text = (build-config $s | to yaml)
    if $dry_run { print $text; return }
    let staged = $"($config).new"
    $text | save --force $staged
    ^promtool check config $staged
    mv --force $staged $config
    ^curl -fsS -X POST $"http://127.0.0.1:($s.port)/-/reload"
    print $"wrote ($config) and reloaded"
}
