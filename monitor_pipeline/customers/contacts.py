"""The customer_contacts frame (SPEC §3 Contacts), built with whole-column operations."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .mapping import NON_WS, WS, arrow_of, first_present, realign, series_of
from .warnings import WarningLog


def split_full_name(full: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """One word -> first; two -> first last; more -> first, middle words, last (`Jan van der Berg`)."""
    arr = arrow_of(full)
    one = pc.match_substring_regex(arr, f"^{NON_WS}+$")
    parts = pc.extract_regex(arr, rf"^(?P<f>{NON_WS}+){WS}+(?:(?P<m>[\s\S]*?){WS}+)?(?P<l>{NON_WS}+)$")
    none = pa.scalar(None, arr.type)
    middle = pc.replace_substring_regex(pc.struct_field(parts, "m"), f"{WS}+", " ")
    middle = pc.if_else(pc.equal(middle, ""), none, middle)
    first = pc.if_else(one, arr, pc.struct_field(parts, "f"))
    middle = pc.if_else(one, none, middle)
    last = pc.if_else(one, none, pc.struct_field(parts, "l"))
    return series_of(first, full.index), series_of(middle, full.index), series_of(last, full.index)


def _join(*parts: pd.Series) -> pd.Series:
    """The parts that are present, joined by one space (missing when none is). Not Arrow's
    ``binary_join_element_wise(null_handling="skip")``: in pyarrow 26 it returns no rows at all when
    every input is null."""
    out = parts[0]
    for part in parts[1:]:
        out = out.where(part.isna(), out.where(out.isna(), out + " ").fillna("") + part)
    return out


def _key(s: pd.Series) -> pd.Series:
    """Case and white space ignored."""
    return series_of(pc.replace_substring_regex(pc.utf8_lower(arrow_of(s)), f"{WS}+", ""), s.index)


def build_contacts(raw: pd.DataFrame, ctx: pd.DataFrame, warnings: WarningLog) -> pd.DataFrame:
    """``raw``: contact person nodes (cleaned, @pos/@seq); ``ctx``: per customer (index = pos)
    CustomerCode, contactfullname, contactemail, contactphone."""
    nodes = raw[raw["@pos"].isin(ctx.index)]
    fields = ["fullname", "firstname", "middlename", "lastname", "email", "phone", "phonenumber", "dynamicfreefields"]
    empty = ~nodes[fields].notna().any(axis=1)
    if empty.any():
        codes = ctx["CustomerCode"].reindex(nodes["@pos"]).set_axis(nodes.index)
        warnings.add(codes, empty, "Contacts", "empty contact person ignored")
        nodes = nodes[~empty]

    first, middle, last = nodes["firstname"], nodes["middlename"], nodes["lastname"]
    has_parts = first.notna() | middle.notna() | last.notna()
    full = first_present(nodes["fullname"], _join(first, middle, last))
    split = full.notna() & ~has_parts
    if split.any():
        s_first, s_middle, s_last = split_full_name(full.where(split))
        first, middle, last = first.where(~split, s_first), middle.where(~split, s_middle), last.where(~split, s_last)
    node_frame = pd.DataFrame({
        "pos": nodes["@pos"].to_numpy(), "o1": 0, "o2": nodes["@seq"].to_numpy(),
        "FullName": full, "FirstName": first, "MiddleName": middle, "LastName": last,
        "Email": nodes["email"], "Phonenumber": first_present(nodes["phone"], nodes["phonenumber"]),
        "DynamicFreeFields": nodes["dynamicfreefields"],
    })

    cfn = ctx["contactfullname"]
    wanted = realign(_key(cfn).reindex(node_frame["pos"]), node_frame.index)
    match = (_key(node_frame["FullName"].astype("str")) == wanted).fillna(False).astype(bool)
    matched_first = match & ~node_frame["pos"].where(match).duplicated() & match
    matched_pos = pd.Index(node_frame.loc[matched_first, "pos"])

    # contactfullname without a matching contact person: a contact made from the contact* fields
    make = ctx.index[cfn.notna().to_numpy()].difference(matched_pos)
    made = ctx.loc[make]
    m_first, m_middle, m_last = split_full_name(made["contactfullname"])
    made_frame = pd.DataFrame({
        "pos": made.index.to_numpy(), "o1": 1, "o2": 0, "FullName": made["contactfullname"],
        "FirstName": m_first, "MiddleName": m_middle, "LastName": m_last, "Email": made["contactemail"],
        "Phonenumber": made["contactphone"], "DynamicFreeFields": pd.Series(pd.NA, index=made.index, dtype="str"),
    })
    no_cfn = ~node_frame["pos"].isin(ctx.index[cfn.notna().to_numpy()])
    main = matched_first | (no_cfn & ~node_frame["pos"].duplicated())
    node_frame["main"] = main.to_numpy(bool)
    made_frame["main"] = True

    out = pd.concat([node_frame, made_frame.reset_index(drop=True)], ignore_index=True)
    out = out.sort_values(["pos", "o1", "o2"], kind="stable", ignore_index=True)
    cust = ctx[["CustomerCode", "contactemail", "contactphone"]].reindex(out["pos"].to_numpy())
    is_main = out["main"].to_numpy(bool)
    for col, src in (("Email", "contactemail"), ("Phonenumber", "contactphone")):
        fallback = realign(cust[src], out.index)
        out[col] = out[col].astype("str").where(~(is_main & out[col].isna().to_numpy()), fallback)
    return pd.DataFrame({
        "CustomerCode": cust["CustomerCode"].to_numpy(), "FullName": out["FullName"], "FirstName": out["FirstName"],
        "MiddleName": out["MiddleName"], "LastName": out["LastName"], "Email": out["Email"],
        "Phonenumber": out["Phonenumber"], "IsMainContactPerson": pd.array(is_main, dtype="boolean"),
        "DynamicFreeFields": out["DynamicFreeFields"],
    })
