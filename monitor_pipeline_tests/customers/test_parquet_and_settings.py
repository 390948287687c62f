"""Parquet round trip of every frame; settings from the environment."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from monitor_pipeline.customers import NormalizeSettings, normalize_customers
from monitor_pipeline.errors import ConfigError

from .xmlbuild import customer, document


def test_parquet_round_trip(tmp_path):
    xml = document(customer("nested", {"customercode": "C1", "customername": "N", "isvatliable": "x", "discount": "1,5",
                                       "customerdashboard": base64.b64encode(b"\x01\x02").decode()},
                            addresses=[("del", {"city": "A"})], contact={"fullname": "A B C"}),
                   customer("flat", {"customername": "rejected"}))
    r = normalize_customers(xml)
    for name in ("customers", "addresses", "contacts", "dashboards", "rejected", "warnings"):
        frame = getattr(r, name)
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path, engine="pyarrow")
        back = pd.read_parquet(path, engine="pyarrow")
        back = back.astype({c: frame[c].dtype for c in frame.columns})
        for c in frame.columns:
            if frame[c].dtype == object:
                back[c] = back[c].astype(object).where(back[c].notna(), None)
        pd.testing.assert_frame_equal(back, frame, check_dtype=True)


def test_from_env():
    s = NormalizeSettings.from_env({"MONITOR_LANGUAGE_MAP": '{"xx": "it"}', "MONITOR_CUSTOMER_ITEM_FILTER": "yes",
                                    "MONITOR_DEFAULT_ACTION_PRICE_LIST_CODE": "ACT"}, extra_data=b"x")
    assert s == NormalizeSettings(language_map={"xx": "it"}, default_action_price_list_code="ACT",
                                  customer_item_filter=True, extra_data=b"x")
    assert s.merged_language_map()["XX"] == "it" and s.merged_language_map()["SE"] == "sv"
    assert NormalizeSettings.from_env({}) == NormalizeSettings()


@pytest.mark.parametrize("env, variable", [
    ({"MONITOR_LANGUAGE_MAP": "[1]"}, "MONITOR_LANGUAGE_MAP"), ({"MONITOR_LANGUAGE_MAP": "{"}, "MONITOR_LANGUAGE_MAP"),
    ({"MONITOR_LANGUAGE_MAP": '{"SV": 1}'}, "MONITOR_LANGUAGE_MAP"),
    ({"MONITOR_CUSTOMER_ITEM_FILTER": "perhaps"}, "MONITOR_CUSTOMER_ITEM_FILTER"),
])
def test_from_env_errors_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        NormalizeSettings.from_env(env)
