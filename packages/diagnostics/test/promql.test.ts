import { describe, expect, it } from "vitest";
import { metricNames } from "./promql.js";

describe("metricNames", () => {
  it("finds the selected metrics and nothing else", () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (shard, le) (rate(omnirelay_resourcelease_replication_lag_bucket{instance=~"$instance", x="a b"}[1m]))) > 3e4',
      ),
    ).toEqual(["omnirelay_resourcelease_replication_lag_bucket"]);
    expect(
      metricNames(
        "omnirelay_a > 0 and on (shard) changes(omnirelay_b[5m]) == 0 unless ignoring(sink) omnirelay_c offset 5m",
      ).sort(),
    ).toEqual(["omnirelay_a", "omnirelay_b", "omnirelay_c"]);
    expect(metricNames("time() - max by (shard) (omnirelay_last_seconds)")).toEqual(["omnirelay_last_seconds"]);
    expect(metricNames('sum(rate(up{job="x"}[$__range])) * 3600')).toEqual(["up"]);
  });
});
