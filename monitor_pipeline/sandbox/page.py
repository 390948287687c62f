"""The sandbox's HTML page (``GET /{admin}/``): customers with addresses and contacts, and the new-customer feed."""

from __future__ import annotations

from html import escape

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f3f3f3}
.off{color:#999}small{color:#666}ul{margin:0;padding-left:1.2em}"""


def _e(value: object) -> str:
    return "" if value is None else escape(str(value))


def _address(a: dict) -> str:
    parts = [a.get(k) for k in ("AddressLine1", "AddressLine2", "PostCode", "City", "Country")]
    main = " (main)" if a.get("IsMainAddress") else ""
    return f"<li><b>{_e(a.get('AddressType'))}</b>{main}: {_e(', '.join(p for p in parts if p))}</li>"


def _contact(c: dict) -> str:
    main = " (main)" if c.get("IsMainContactPerson") else ""
    extra = ", ".join(_e(c.get(k)) for k in ("Email", "Phonenumber") if c.get(k))
    return f"<li>{_e(c.get('FullName'))}{main} <small>{extra}</small></li>"


def render_page(admin: str, customers: list[dict], feed: list[dict]) -> str:
    rows = []
    for c in customers:
        dash = f"{c['Dashboard']['size']} bytes" if c["Dashboard"] else ""
        rows.append(
            f"<tr class={'on' if c['CustomerEnabled'] else 'off'}><td>{_e(c['CustomerCode'])}</td>"
            f"<td>{_e(c['CustomerName'])}<br><small>{_e(c['CustomerGuid'])}</small></td>"
            f"<td>{'active' if c['CustomerEnabled'] else 'inactive'}</td>"
            f"<td><ul>{''.join(_address(a) for a in c['Addresses'])}</ul></td>"
            f"<td><ul>{''.join(_contact(x) for x in c['Contacts'])}</ul></td>"
            f"<td>{_e(c['CustomerNote'])}<br><small>note rev {c['NoteRevision']}</small></td>"
            f"<td>{dash}</td></tr>")
    feed_rows = "".join(
        f"<tr><td>{n['Sequence']}</td><td>{_e(n['CustomerName'])}<br><small>{_e(n['CustomerGuid'])}</small></td>"
        f"<td>{_e(n['CustomerCode'])}</td><td>{_e(n['CreatedAt'])}</td><td>{_e(n['Result'] or n['Error'])}</td></tr>"
        for n in feed)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>App4Sales sandbox — {_e(admin)}</title>
<style>{STYLE}</style></head><body><h1>App4Sales sandbox — administration <i>{_e(admin)}</i></h1>
<h2>Customers ({len(customers)} shown)</h2>
<table><tr><th>Code</th><th>Name</th><th>Status</th><th>Addresses</th><th>Contacts</th><th>Note</th><th>Dashboard</th></tr>
{''.join(rows)}</table>
<h2>Customers created in the app (newest first)</h2>
<table><tr><th>Seq</th><th>Name</th><th>Code</th><th>Created</th><th>Result posted</th></tr>{feed_rows}</table>
</body></html>"""
