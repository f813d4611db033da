# Tests of the prometheus scripts' pure helpers: `nu tests/test_prometheus.nu`
use std/assert
use ../scripts/install.nu [normalize-arch release]
use ../scripts/configure.nu [build-config server-flags]
use ../scripts/check.nu [down-targets]
use ../scripts/uninstall.nu [paths-to-remove]

const SETTINGS = {
    port: 9090, config_dir: "/etc/prometheus", data_dir: "/var/lib/prometheus", retention_time: "15d",
    scrape_interval: "30s", evaluation_interval: "30s", external_labels: {site: "fra1"}, alertmanagers: [],
    scrape_jobs: [
        {job_name: "prometheus", targets: ["localhost:9090"]}
        {job_name: "node", targets: ["10.0.0.5:9100" "10.0.0.6:9100"], scrape_interval: "15s", labels: {env: "prod"}}
    ]
}

def "test release" [] {
    let rel = (release "2.47.0" (normalize-arch "x86_64"))
    assert equal $rel.folder "prometheus-2.47.0.linux-amd64"
    assert ($rel.url | str ends-with "/v2.47.0/prometheus-2.47.0.linux-amd64.tar.gz")
}

def "test config" [] {
    let cfg = (build-config $SETTINGS)
    assert equal $cfg.global.external_labels.site "fra1"
    assert equal ($cfg.scrape_configs | get job_name) ["prometheus" "node"]
    assert equal ($cfg.scrape_configs | last | get scrape_interval) "15s"
    assert not ("alerting" in $cfg)
    let alerting = (build-config ($SETTINGS | merge {alertmanagers: ["10.0.0.9:9093"]}))
    assert equal ($alerting.alerting.alertmanagers.0.static_configs.0.targets) ["10.0.0.9:9093"]
}

def "test flags" [] {
    assert ("--storage.tsdb.retention.time=15d" in (server-flags $SETTINGS))
    assert equal (server-flags ($SETTINGS | merge {retention_size_gb: 50}) | last) "--storage.tsdb.retention.size=50GB"
}

def "test targets" [] {
    let response = {data: {activeTargets: [
        {health: "up", labels: {job: "node", instance: "10.0.0.5:9100"}}
        {health: "down", labels: {job: "node", instance: "10.0.0.6:9100"}, lastError: "connection refused"}
    ]}}
    assert equal (down-targets $response) ["node 10.0.0.6:9100: connection refused"]
    assert ("/var/lib/prometheus" in (paths-to-remove --purge))
}

def main [] {
    test release
    test config
    test flags
    test targets
    print "prometheus: 4 tests passed"
}
