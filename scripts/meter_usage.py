"""Usage records for the crash and multi-instance tests: hourly cycles of two components per resource, with the exact
amount each cycle must be deducted (rated with 8 decimals, rounded half up to the fen). Standard library only."""
import time
from decimal import Decimal, ROUND_HALF_UP

HOUR = 3600


def records(account, resources, hours, id_prefix):
    """(records, expected) for resources res-0… over the `hours` whole hours before this one; expected[(r, h)] is a cycle's
    deduction."""
    now = int(time.time())
    top = now - now % HOUR
    out, expected = [], {}
    for r in range(resources):
        for h in range(1, hours + 1):
            start_at, exact = top - h * HOUR, Decimal(0)
            for component, price in (("cpu", "0.01234567"), ("disk", "0.00033333")):
                quantity = Decimal(r % 7 + h)
                exact += quantity * Decimal(price)
                out.append({"id": f"{id_prefix}-{r}-{h}-{component}", "accountId": account, "resourceId": f"res-{r}",
                            "component": component, "quantity": str(quantity), "unit": "h", "unitPrice": price,
                            "periodStart": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_at)),
                            "periodEnd": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_at + HOUR))})
            expected[(r, h)] = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return out, expected
