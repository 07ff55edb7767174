#!/usr/bin/env python3
"""Writes examples/demo/: the demo book of a Brazilian accounting firm (Escritório Contábil
Horizonte) with a coworking floor, 2023-2024, in BRL with one customer billed in USD.

Deterministic: every event is listed below; run it again to get the same files."""
import csv
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")

PRODUCTS = [
    # id, name, family, tier, kind, list_price, price_term_months
    ("contabil-essencial", "Contabilidade Essencial", "contabilidade", 1, "plan", "390.00", 1),
    ("contabil-profissional", "Contabilidade Profissional", "contabilidade", 2, "plan", "790.00", 1),
    ("contabil-premium", "Contabilidade Premium", "contabilidade", 3, "plan", "1490.00", 1),
    ("folha", "Folha de pagamento (por colaborador)", "folha", 1, "addon", "35.00", 1),
    ("fiscal", "Módulo fiscal", "fiscal", 1, "addon", "190.00", 1),
    ("bpo-financeiro", "BPO financeiro", "bpo", 1, "addon", "650.00", 1),
    ("estacao-coworking", "Estação de coworking", "coworking", 1, "plan", "590.00", 1),
    ("sala-privativa", "Sala privativa", "coworking", 2, "plan", "2200.00", 1),
    ("endereco-fiscal", "Endereço fiscal", "endereco", 1, "service", "1200.00", 12),
]

CUSTOMERS = [
    # id, name, registered_on, segment, country, channel
    ("padaria-sao-jorge", "Padaria São Jorge", "2023-01-09", "simples", "BR", "indicacao"),
    ("studio-bela-forma", "Studio Bela Forma", "2023-01-16", "mei", "BR", "google-ads"),
    ("transportes-rota-sul", "Transportes Rota Sul", "2023-02-02", "lucro-presumido", "BR", "outbound"),
    ("clinica-vida-plena", "Clínica Vida Plena", "2023-02-20", "lucro-presumido", "BR", "indicacao"),
    ("agencia-pixel", "Agência Pixel", "2023-03-06", "simples", "BR", "google-ads"),
    ("mercadinho-boa-vista", "Mercadinho Boa Vista", "2023-03-13", "simples", "BR", "parceiro"),
    ("dev-house-floripa", "Dev House Floripa", "2023-04-03", "simples", "BR", "google-ads"),
    ("oficina-mecanica-ze", "Oficina Mecânica do Zé", "2023-04-17", "mei", "BR", "indicacao"),
    ("restaurante-sabor-mineiro", "Restaurante Sabor Mineiro", "2023-05-08", "simples", "BR", "parceiro"),
    ("construtora-alicerce", "Construtora Alicerce", "2023-05-22", "lucro-presumido", "BR", "outbound"),
    ("pet-shop-amigo-fiel", "Pet Shop Amigo Fiel", "2023-06-05", "mei", "BR", "google-ads"),
    ("escola-idiomas-globe", "Escola de Idiomas Globe", "2023-06-19", "simples", "BR", "indicacao"),
    ("acme-labs-us", "Acme Labs Inc.", "2023-07-03", "lucro-presumido", "US", "outbound"),
    ("farmacia-saude-ja", "Farmácia Saúde Já", "2023-07-17", "simples", "BR", "parceiro"),
    ("arquitetura-traco", "Traço Arquitetura", "2023-08-07", "simples", "BR", "google-ads"),
    ("loja-moda-viva", "Moda Viva", "2023-08-21", "mei", "BR", "indicacao"),
    ("consultoria-norte", "Norte Consultoria", "2023-09-04", "lucro-presumido", "BR", "outbound"),
    ("cafe-grao-nobre", "Café Grão Nobre", "2023-09-18", "mei", "BR", "google-ads"),
    ("startup-agrotech", "AgroTech Sementes", "2023-10-02", "simples", "BR", "parceiro"),
    ("academia-movimento", "Academia Movimento", "2023-10-16", "simples", "BR", "google-ads"),
    ("advocacia-lima", "Lima Advogados", "2023-11-06", "lucro-presumido", "BR", "indicacao"),
    ("grafica-impressa", "Gráfica Impressa", "2023-11-20", "simples", "BR", "outbound"),
    ("hotel-pousada-mar", "Pousada do Mar", "2023-12-04", "simples", "BR", "parceiro"),
    ("eletrica-faisca", "Elétrica Faísca", "2024-01-08", "mei", "BR", "google-ads"),
    ("odonto-sorriso", "Odonto Sorriso", "2024-01-22", "simples", "BR", "indicacao"),
    ("ecommerce-casa-bela", "Casa Bela E-commerce", "2024-02-05", "simples", "BR", "google-ads"),
    ("marcenaria-cedro", "Marcenaria Cedro", "2024-03-04", "mei", "BR", "outbound"),
    ("software-nuvem-azul", "Nuvem Azul Software", "2024-03-18", "lucro-presumido", "BR", "parceiro"),
    ("buffet-festa-boa", "Buffet Festa Boa", "2024-05-06", "simples", "BR", "indicacao"),
    ("lavanderia-limpa", "Lavanderia Limpa", "2024-07-01", "mei", "BR", "google-ads"),
    ("estudio-foto-luz", "Estúdio Foto Luz", "2024-06-10", "mei", "BR", "indicacao"),
]

# Lines: id, customer, contract, product, quantity, unit_price, discount, currency,
#        billing_period_months, start, end, revises
L = []


def line(cust, contract, product, qty, price, start, end="", disc="", period=1, currency="", revises=""):
    lid = f"L{len(L) + 1:03d}"
    L.append((lid, cust, contract, product, qty, price, disc, currency, period, start, end, revises))
    return lid


# Plain monthly customers, some with add-ons from day one.
line("padaria-sao-jorge", "K01", "contabil-essencial", 1, "390.00", "2023-01-09")
line("padaria-sao-jorge", "K01", "folha", 6, "35.00", "2023-01-09", end="2024-03-31")
line("padaria-sao-jorge", "K01", "folha", 8, "35.00", "2024-04-01", revises="L002")  # seat change: upsell
line("studio-bela-forma", "K02", "contabil-essencial", 1, "390.00", "2023-01-16", end="2024-04-30")  # churn in May 2024
transp = line("transportes-rota-sul", "K03", "contabil-profissional", 1, "790.00", "2023-02-02", end="2024-02-29")
line("transportes-rota-sul", "K03", "contabil-premium", 1, "1490.00", "2024-03-01", revises=transp)  # upgrade
line("transportes-rota-sul", "K03", "folha", 24, "35.00", "2023-02-02")
line("clinica-vida-plena", "K04", "contabil-profissional", 1, "790.00", "2023-02-20", disc="10")
line("clinica-vida-plena", "K04b", "bpo-financeiro", 1, "650.00", "2024-06-03")  # cross-sell: new contract
line("agencia-pixel", "K05", "contabil-essencial", 1, "390.00", "2023-03-06")
line("agencia-pixel", "K05", "estacao-coworking", 2, "590.00", "2023-03-06", end="2024-08-31")
line("agencia-pixel", "K05", "estacao-coworking", 1, "590.00", "2024-09-01", revises="L011")  # seats down: downsell
line("mercadinho-boa-vista", "K06", "contabil-essencial", 1, "390.00", "2023-03-13", end="2023-11-30")  # churn 2023
line("mercadinho-boa-vista", "K06r", "contabil-essencial", 1, "420.00", "2024-04-01")  # reactivation April 2024
line("dev-house-floripa", "K07", "contabil-profissional", 1, "9480.00", "2023-04-03", period=12, disc="5")  # annual
line("dev-house-floripa", "K07", "sala-privativa", 1, "2200.00", "2023-04-03")
line("oficina-mecanica-ze", "K08", "contabil-essencial", 1, "390.00", "2023-04-17")
line("oficina-mecanica-ze", "K08", "fiscal", 1, "190.00", "2024-02-19")  # cross-sell
line("restaurante-sabor-mineiro", "K09", "contabil-profissional", 1, "790.00", "2023-05-08")
line("restaurante-sabor-mineiro", "K09", "folha", 15, "35.00", "2023-05-08")
line("restaurante-sabor-mineiro", "K09", "fiscal", 1, "190.00", "2023-05-08", end="2024-06-30")  # add-on dropped: downsell July
line("construtora-alicerce", "K10", "contabil-premium", 1, "1490.00", "2023-05-22")
line("construtora-alicerce", "K10", "folha", 40, "35.00", "2023-05-22", end="2024-09-30")
line("construtora-alicerce", "K10", "folha", 55, "35.00", "2024-10-01", revises="L023")  # seats up
line("pet-shop-amigo-fiel", "K11", "contabil-essencial", 1, "390.00", "2023-06-05", end="2024-09-15")  # churn Sept (mid-month end)
line("escola-idiomas-globe", "K12", "contabil-profissional", 1, "790.00", "2023-06-19")
line("escola-idiomas-globe", "K12", "endereco-fiscal", 1, "1200.00", "2024-01-15", period=12)  # cross-sell, annual
line("acme-labs-us", "K13", "contabil-premium", 1, "300.00", "2023-07-03", currency="USD")
line("acme-labs-us", "K13", "bpo-financeiro", 1, "130.00", "2024-05-06", currency="USD")  # cross-sell in USD
line("farmacia-saude-ja", "K14", "contabil-profissional", 1, "790.00", "2023-07-17")
line("arquitetura-traco", "K15", "contabil-essencial", 1, "390.00", "2023-08-07", end="2024-01-31")
line("arquitetura-traco", "K15", "contabil-profissional", 1, "790.00", "2024-02-01", revises="L031")  # upgrade
line("loja-moda-viva", "K16", "contabil-essencial", 1, "390.00", "2023-08-21", disc="15")
line("consultoria-norte", "K17", "contabil-profissional", 1, "790.00", "2023-09-04")
line("consultoria-norte", "K17", "estacao-coworking", 3, "590.00", "2023-09-04", end="2024-05-31")  # dropped: downsell June
line("cafe-grao-nobre", "K18", "contabil-essencial", 1, "390.00", "2023-09-18", end="2024-02-29")  # churn March
line("startup-agrotech", "K19", "contabil-profissional", 1, "790.00", "2023-10-02")
line("startup-agrotech", "K19", "folha", 12, "35.00", "2024-03-11")  # cross-sell
line("academia-movimento", "K20", "contabil-essencial", 1, "390.00", "2023-10-16")
line("advocacia-lima", "K21", "contabil-premium", 1, "1490.00", "2023-11-06")
line("advocacia-lima", "K21", "sala-privativa", 1, "2200.00", "2024-08-01")  # cross-sell
line("grafica-impressa", "K22", "contabil-profissional", 1, "790.00", "2023-11-20", end="2024-10-31")  # churn November
line("hotel-pousada-mar", "K23", "contabil-essencial", 1, "390.00", "2023-12-04")
line("eletrica-faisca", "K24", "contabil-essencial", 1, "390.00", "2024-01-08")
line("odonto-sorriso", "K25", "contabil-profissional", 1, "790.00", "2024-01-22")
line("odonto-sorriso", "K25", "folha", 5, "35.00", "2024-01-22")
line("ecommerce-casa-bela", "K26", "contabil-profissional", 1, "790.00", "2024-02-05")
line("ecommerce-casa-bela", "K26", "fiscal", 1, "190.00", "2024-02-05")
line("marcenaria-cedro", "K27", "contabil-essencial", 1, "390.00", "2024-03-04")
line("software-nuvem-azul", "K28", "contabil-premium", 1, "17880.00", "2024-03-18", period=12, disc="10")  # annual
line("software-nuvem-azul", "K28", "sala-privativa", 1, "2200.00", "2024-03-18")
line("buffet-festa-boa", "K29", "contabil-essencial", 1, "390.00", "2024-05-06")
line("lavanderia-limpa", "K30", "contabil-essencial", 1, "390.00", "2024-07-01")
line("estudio-foto-luz", "K31", "estacao-coworking", 1, "590.00", "2024-06-10")
line("estudio-foto-luz", "K31", "contabil-essencial", 1, "390.00", "2024-08-12")  # cross-sell after registration

FX = [(f"{y}-{m:02d}", "USD", r) for (y, m), r in zip(
    [(2023, m) for m in range(1, 13)] + [(2024, m) for m in range(1, 13)],
    ["5.2000", "5.1800", "5.1200", "4.9900", "4.9300", "4.8500", "4.8000", "4.8900", "4.9600", "5.0500", "4.9200", "4.8900",
     "4.9100", "4.9700", "4.9800", "5.1300", "5.1300", "5.3900", "5.5400", "5.5500", "5.5400", "5.6200", "5.7800", "6.1000"])]

SPEND = [(f"{y}-{m:02d}", ch, amt) for y in (2023, 2024) for m in range(1, 13)
         for ch, amt in (("google-ads", "1800.00"), ("outbound", "2500.00"), ("parceiro", "600.00"), ("indicacao", "0.00"))]

USAGE = [("padaria-sao-jorge", "folha", f"2024-{m:02d}", u, "8" if m >= 4 else "6")
         for m, u in zip(range(1, 13), ["6", "6", "6", "8", "8", "8", "8", "7", "8", "8", "8", "8"])]
USAGE += [("agencia-pixel", "estacao-coworking", f"2024-{m:02d}", u, "2" if m <= 8 else "1")
          for m, u in zip(range(1, 13), ["2", "2", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1"])]

OFFERS = [
    ("O01", "oficina-mecanica-ze", "fiscal", "cross_sell", "2024-02-01", "accepted", "2024-02-15", "L018"),
    ("O02", "transportes-rota-sul", "contabil-premium", "upsell", "2024-02-05", "accepted", "2024-02-26", "L006"),
    ("O03", "agencia-pixel", "bpo-financeiro", "cross_sell", "2024-03-04", "declined", "2024-03-20", ""),
    ("O04", "clinica-vida-plena", "bpo-financeiro", "cross_sell", "2024-05-10", "accepted", "2024-05-28", "L009"),
    ("O05", "academia-movimento", "folha", "cross_sell", "2024-06-03", "declined", "2024-06-14", ""),
    ("O06", "advocacia-lima", "sala-privativa", "cross_sell", "2024-07-01", "accepted", "2024-07-22", "L041"),
    ("O07", "hotel-pousada-mar", "contabil-profissional", "upsell", "2024-10-07", "", "", ""),
    ("O08", "padaria-sao-jorge", "contabil-profissional", "upsell", "2024-11-04", "", "", ""),
]


def write(name, header, rows):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("products.csv", ["id", "name", "family", "tier", "kind", "list_price", "price_term_months"], PRODUCTS)
    write("customers.csv", ["id", "name", "registered_on", "segment", "country", "channel"], CUSTOMERS)
    write("subscriptions.csv", ["id", "customer_id", "contract_id", "product_id", "quantity", "unit_price",
                                "discount_pct", "currency", "billing_period_months", "start_date", "end_date",
                                "revises"], L)
    write("fx_rates.csv", ["month", "currency", "rate"], FX)
    write("marketing_spend.csv", ["month", "channel", "amount"], SPEND)
    write("usage.csv", ["customer_id", "product_id", "month", "used", "included"], USAGE)
    write("offers.csv", ["id", "customer_id", "product_id", "kind", "offered_on", "outcome", "decided_on", "line_id"], OFFERS)


if __name__ == "__main__":
    main()
