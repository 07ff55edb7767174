#!/usr/bin/env python3
"""Writes a Stripe-shaped export (the warehouse tables Fivetran syncs, with the column shapes
of ../shared/data/exports/stripe-fivetran) of N subscriptions, for the conversion benchmark.

usage: stripe_export.py OUT_DIR SUBSCRIPTIONS [SEED]

Tables: customer, product, plan, price, subscription, subscription_item (one to three items
per subscription). Subscriptions are active, trialing, canceled (ended), or set to cancel at
the period end; a few plans are yearly, weekly or metered. Amounts are in cents (USD)."""
import csv
import os
import random
import sys
from datetime import datetime, timedelta, timezone

HEADERS = {
    "customer": "id,_fivetran_synced,account_balance,address_city,address_country,address_line_1,address_line_2,address_postal_code,address_state,balance,bank_account_id,created,currency,default_card_id,delinquent,description,email,invoice_prefix,invoice_settings_default_payment_method,invoice_settings_footer,is_deleted,livemode,name,phone,shipping_address_city,shipping_address_country,shipping_address_line_1,shipping_address_line_2,shipping_address_postal_code,shipping_address_state,shipping_carrier,shipping_name,shipping_phone,shipping_tracking_number,source_id,tax_exempt,tax_info_tax_id,tax_info_type,tax_info_verification_status,tax_info_verification_verified_name,metadata",
    "product": "id,_fivetran_synced,active,caption,created,description,is_deleted,livemode,metadata,name,package_dimensions_height,package_dimensions_length,package_dimensions_weight,package_dimensions_width,shippable,statement_descriptor,type,unit_label,updated,url",
    "plan": "id,_fivetran_synced,active,aggregate_usage,amount,billing_scheme,created,currency,interval,interval_count,is_deleted,livemode,nickname,product_id,tiers_mode,transform_usage_divide_by,transform_usage_round,trial_period_days,usage_type",
    "subscription": "id,_fivetran_synced,application_fee_percent,billing,billing_cycle_anchor,billing_threshold_amount_gte,billing_threshold_reset_billing_cycle_anchor,cancel_at,cancel_at_period_end,canceled_at,created,current_period_end,current_period_start,customer_id,days_until_due,default_source_id,ended_at,livemode,metadata,quantity,start_date,status,tax_percent,trial_end,trial_start",
    "subscription_item": "_fivetran_synced,created,current_period_end,current_period_start,id,metadata,plan_id,quantity,subscription_id",
}

SYNCED = "2026-11-01 00:00:00"
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def ts(d):
    return d.strftime("%Y-%m-%d %H:%M:%S")


def writer(out, name):
    f = open(os.path.join(out, f"{name}_data.csv"), "w", newline="", buffering=1 << 20)
    w = csv.writer(f)
    header = HEADERS[name].split(",")
    w.writerow(header)
    return f, w, header


def row(header, **values):
    return [values.get(c, "") for c in header]


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    os.makedirs(out, exist_ok=True)

    f, w, h = writer(out, "product")
    for p in range(20):
        w.writerow(row(h, id=f"prod_{p}", _fivetran_synced=SYNCED, active="true", created=ts(EPOCH),
                       is_deleted="false", livemode="true", metadata="{}", name=f"Product {p}", type="service",
                       updated=ts(EPOCH)))
    f.close()

    plans = []
    f, w, h = writer(out, "plan")
    for k in range(60):
        interval, count, usage = "month", 1, "licensed"
        if k % 10 == 7:
            interval = "year"
        elif k % 20 == 9:
            interval = "week"
        elif k % 15 == 4:
            usage = "metered"
        elif k % 12 == 5:
            count = 3
        amount = rng.choice([990, 2900, 4900, 9900, 14900, 29900]) * (10 if interval == "year" else 1)
        plans.append(f"plan_{k}")
        w.writerow(row(h, id=f"plan_{k}", _fivetran_synced=SYNCED, active="TRUE", amount=amount,
                       billing_scheme="per_unit", created=ts(EPOCH), currency="usd", interval=interval,
                       interval_count=count, is_deleted="FALSE", livemode="TRUE", product_id=f"prod_{k % 20}",
                       usage_type=usage))
    f.close()

    fc, wc, hc = writer(out, "customer")
    fs, ws, hs = writer(out, "subscription")
    fi, wi, hi = writer(out, "subscription_item")
    item = 0
    for s in range(n):
        cus = f"cus_{s:08d}"
        created = EPOCH + timedelta(days=rng.randrange(0, 1000), seconds=rng.randrange(0, 86400))
        wc.writerow(row(hc, id=cus, _fivetran_synced=SYNCED, created=ts(created), currency="usd",
                        delinquent="FALSE", is_deleted="FALSE", livemode="TRUE", name=f"Customer {s}",
                        tax_exempt="none", metadata="{}"))
        kind = rng.random()
        status, trial_start, trial_end, ended, cancel_at_end, cancel_at, canceled_at = "active", "", "", "", "FALSE", "", ""
        start = created
        period_start = created
        period_end = created + timedelta(days=30)
        if kind < 0.10:
            trial_start, trial_end = ts(created), ts(created + timedelta(days=14))
        elif kind < 0.35:
            status = "canceled"
            end = created + timedelta(days=rng.randrange(30, 700))
            ended, canceled_at = ts(end), ts(end)
        elif kind < 0.40:
            cancel_at_end, cancel_at, canceled_at = "TRUE", ts(period_end), ts(period_end - timedelta(days=3))
        ws.writerow(row(hs, id=f"sub_{s:08d}", _fivetran_synced=SYNCED, billing="charge_automatically",
                        billing_cycle_anchor=ts(created), cancel_at=cancel_at, cancel_at_period_end=cancel_at_end,
                        canceled_at=canceled_at, created=ts(created), current_period_end=ts(period_end),
                        current_period_start=ts(period_start), customer_id=cus, ended_at=ended, livemode="TRUE",
                        metadata="{}", quantity=1, start_date=ts(start), status=status, trial_end=trial_end,
                        trial_start=trial_start))
        for plan in rng.sample(plans, rng.choice((1, 1, 1, 2, 2, 3))):
            wi.writerow(row(hi, _fivetran_synced=SYNCED, created=ts(created), current_period_end=ts(period_end),
                            current_period_start=ts(period_start), id=f"si_{item:09d}", metadata="{}",
                            plan_id=plan, quantity=rng.choice((1, 1, 1, 2, 5, 10)),
                            subscription_id=f"sub_{s:08d}"))
            item += 1
    for f in (fc, fs, fi):
        f.close()


if __name__ == "__main__":
    main()
