"""The customer_addresses frame (SPEC §3 Addresses), built with whole-column operations."""

from __future__ import annotations

import pandas as pd

from .columns import ADDRESS_PARTS, ADDRESS_PREFIXES
from .mapping import first_present, lookup, realign
from .settings import LANGUAGE_COUNTRY
from .warnings import WarningLog

TYPE_CODES = {"invoice": "inv", "inv": "inv", "delivery": "del", "del": "del", "visit": "vis", "vis": "vis"}
_EXISTS = ["address1", "address2", "postcode", "city"]


def _exists(frame: pd.DataFrame) -> pd.Series:
    return frame[_EXISTS].notna().any(axis=1)


def build_addresses(raw: pd.DataFrame, ctx: pd.DataFrame, warnings: WarningLog) -> pd.DataFrame:
    """``raw``: address nodes (cleaned, @pos/@seq); ``ctx``: per customer (index = pos) CustomerCode,
    LanguageCode, countrycode, contactemail/phone/fax and the cleaned prefix fields."""
    pieces = []
    for order, (prefix, code) in enumerate(ADDRESS_PREFIXES.items()):
        part = pd.DataFrame({p: ctx[prefix + p] for p in ADDRESS_PARTS})
        part.insert(0, "pos", ctx.index.to_numpy())
        part["o1"], part["o2"], part["type"] = 0, order, code
        pieces.append(part[_exists(part).to_numpy()])

    nodes = raw[raw["@pos"].isin(ctx.index)]
    if len(nodes):
        kind_raw = first_present(nodes["@type"], nodes["type"])
        kind = kind_raw.str.lower().map(TYPE_CODES)
        exists = _exists(nodes)
        bad = exists & kind.isna()
        if bad.any():
            codes = ctx["CustomerCode"].reindex(nodes["@pos"]).set_axis(nodes.index)
            msg = "address without a valid type (" + kind_raw.fillna("none").astype("str") + "); ignored"
            warnings.add(codes, bad, "AddressType", msg)
        keep = (exists & kind.notna()).to_numpy()
        node_part = pd.DataFrame({p: nodes[p] for p in ADDRESS_PARTS})
        node_part.insert(0, "pos", nodes["@pos"].to_numpy())
        node_part["o1"], node_part["o2"], node_part["type"] = 1, nodes["@seq"].to_numpy(), kind.astype(object)
        pieces.append(node_part[keep])

    addr = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=["pos", "o1", "o2", "type", *ADDRESS_PARTS])
    addr = addr.sort_values(["pos", "o1", "o2"], kind="stable", ignore_index=True)

    # delivery <-> visit copy (invoice never copied)
    first = addr[~addr.duplicated(["pos", "type"])]
    first_del = first[first["type"] == "del"].set_index("pos", drop=False)
    first_vis = first[first["type"] == "vis"].set_index("pos", drop=False)
    to_vis = first_del.loc[first_del.index.difference(first_vis.index)].assign(type="vis", o1=2, o2=0)
    to_del = first_vis.loc[first_vis.index.difference(first_del.index)].assign(type="del", o1=2, o2=1)
    if len(to_vis) or len(to_del):
        addr = pd.concat([addr, to_vis.reset_index(drop=True), to_del.reset_index(drop=True)], ignore_index=True)
        addr = addr.sort_values(["pos", "o1", "o2"], kind="stable", ignore_index=True)

    pos = addr["pos"].to_numpy()
    cust = ctx[["CustomerCode", "LanguageCode", "countrycode", "contactemail", "contactphone", "contactfax"]].reindex(pos)
    lang_country = lookup(cust["LanguageCode"].astype("str").str.lower(), LANGUAGE_COUNTRY)
    country = first_present(addr["countrycode"].astype("str"), realign(cust["countrycode"], addr.index),
                            realign(lang_country, addr.index)).str.upper()
    is_main = addr["type"].isin(["vis", "del"]) & ~addr.duplicated(["pos", "type"])

    def own_or(col, fallback):
        return first_present(addr[col].astype("str"), realign(cust[fallback], addr.index))

    return pd.DataFrame({
        "CustomerCode": cust["CustomerCode"].to_numpy(), "AddressType": addr["type"].to_numpy(),
        "AddressLine1": addr["address1"], "AddressLine2": addr["address2"], "PostCode": addr["postcode"],
        "City": addr["city"], "Country": country, "Email": own_or("email", "contactemail"),
        "Phone": own_or("phone", "contactphone"), "Fax": own_or("fax", "contactfax"),
        "IsMainAddress": pd.array(is_main.to_numpy(bool), dtype="boolean"),
    })
