"""The deterministic lead extractors: each format they read, what they must never read, and
the labelled set as a whole (so that a regression in one rule shows as a drop in a field)."""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from apps.leads.extraction import Budget, Extraction, Timeline, extract, region_for_time_zone

TODAY = date(2026, 11, 25)  # a Wednesday
FIXTURE = Path(__file__).parent / "fixtures" / "extraction_labelled.json"


def read(text: str, region: str = "") -> Extraction:
    return extract(text, today=TODAY, default_region=region)


# ---- e-mail


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("mi correo es Ana.Perez@Gmail.com", "ana.perez@gmail.com"),
        ("escríbeme a ventas@ferreteria.com.mx.", "ventas@ferreteria.com.mx"),
        ("email: j.doe+chapi@example.co", "j.doe+chapi@example.co"),
        ("compras@lacosteña.mx por favor", "compras@lacosteña.mx"),
        ("no tengo correo, solo whatsapp", ""),
        ("síguenos en @tienda_mx", ""),
    ],
)
def test_it_reads_the_email_lower_cased(text: str, email: str) -> None:
    assert read(text).email == email


# ---- phone


@pytest.mark.parametrize(
    ("text", "region", "phone"),
    [
        ("Mi cel es +52 55 1234 5678", "", "+525512345678"),
        ("llámame al 55-1234-5678", "MX", "+525512345678"),
        ("fijo (601) 555 1234", "CO", "+576015551234"),
        ("+57 300 123 4567", "", "+573001234567"),
        ("mi número 300 123 4567", "CO", "+573001234567"),
        ("celu +54 9 11 1234-5678", "", "+5491112345678"),
        ("+56 9 8765 4321", "", "+56987654321"),
        ("9 8765 4321", "CL", "+56987654321"),
        ("987 654 321", "PE", "+51987654321"),
        ("wa.me/5215512345678", "", "+525512345678"),
        ("https://api.whatsapp.com/send?phone=573001112233", "", "+573001112233"),
        ("Call me on +52 1 55 1234 5678", "", "+525512345678"),
        ("+1 (415) 555-0100", "", "+14155550100"),
        ("text me at 212-555-0199", "US", "+12125550199"),
    ],
)
def test_it_reads_phones_as_e164(text: str, region: str, phone: str) -> None:
    assert read(text, region).phone == phone


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("Mi cel es 55 1234 5678", ""),  # no country code and no region: not guessed
        ("mi pedido 5512345678 no llega", "MX"),
        ("número de pedido: 5512345678", "MX"),
        ("order #4155550100", "US"),
        ("Factura 0001-00004567 impaga", "AR"),
        ("El RUC es 20512345678", "PE"),
        ("presupuesto $1,200,000", "MX"),
        ("el 15/03/2027 a las 10:30", "MX"),
        ("CP 06600, año 2025", "MX"),
    ],
)
def test_it_does_not_read_numbers_that_are_not_phones(text: str, region: str) -> None:
    assert read(text, region).phone == ""


# ---- budget


@pytest.mark.parametrize(
    ("text", "region", "amount", "currency"),
    [
        ("tengo 50 mil pesos", "MX", "50000", "MXN"),
        ("$2,000 USD", "", "2000", "USD"),
        ("puedo pagar 2k", "", "2000", ""),
        ("2K dólares", "", "2000", "USD"),
        ("presupuesto de medio millón de pesos", "CO", "500000", "COP"),
        ("presupuesto de un millón y medio", "", "1500000", ""),
        ("budget 1.5M", "", "1500000", ""),
        ("US$ 3.500", "", "3500", "USD"),
        ("3.500 euros", "", "3500", "EUR"),
        ("COP 2.000.000", "", "2000000", "COP"),
        ("tengo entre 10 y 20 mil", "", "20000", ""),
        ("$10,000 - $20,000", "US", "20000", "USD"),
        ("$1,200 MXN/mes", "", "1200", "MXN"),
        ("alrededor de 500 dólares", "", "500", "USD"),
        ("presupuesto de 30 mil", "", "30000", ""),
        ("veinte mil pesos", "MX", "20000", "MXN"),
        ("twenty five thousand dollars", "", "25000", "USD"),
        ("budget of half a million dollars", "", "500000", "USD"),
        ("presupuesto 1.200,50 euros", "", "1200.5", "EUR"),
        ("1,5 millones de pesos", "CO", "1500000", "COP"),
        ("$2.000.000 para el proyecto", "CL", "2000000", "CLP"),
        ("tenemos $500", "US", "500", "USD"),
        ("tenemos $500", "EC", "500", "USD"),
        ("tenemos $500", "", "500", ""),
        ("tenemos $500", "ES", "500", ""),
        ("unos 300 mil pesos", "AR", "300000", "ARS"),
        ("tengo 50 lucas", "AR", "50000", "ARS"),
        ("2 millones de pesos chilenos", "", "2000000", "CLP"),
        ("S/ 5,000 para el proyecto", "", "5000", "PEN"),
        ("R$ 10.000", "", "10000", "BRL"),
        ("we can afford 2 grand", "", "2000", ""),
        ("$1,200.50", "US", "1200.5", "USD"),
        ("el plan de $499 es caro, tengo $300", "MX", "300", "MXN"),
    ],
)
def test_it_reads_budgets(text: str, region: str, amount: str, currency: str) -> None:
    assert read(text, region).budget == Budget(amount=Decimal(amount), currency=currency)


@pytest.mark.parametrize(
    "text",
    [
        "para 3 personas",
        "presupuesto para 2025",
        "tenemos 15 años en el mercado",
        "un descuento del 20%",
        "tengo 300 productos",
        "mi pedido #48213",
        "CP 03940",
        "somos 12 vendedores y 3 sucursales",
        "the $49 plan",
        "el plan de 1500 soles",
        "we made $1.5M in sales last year",
        "facturamos 2 palos por mes",
        "In 2025 we spent $40,000 on ads",
        "a las 10:30",
        "we have 50 employees",
        "dos personas",
    ],
)
def test_it_does_not_read_numbers_that_are_not_budgets(text: str) -> None:
    assert read(text, "MX").budget is None


# ---- timeline


@pytest.mark.parametrize(
    ("text", "words", "day", "precision"),
    [
        ("lo necesito hoy", "hoy", date(2026, 11, 25), "day"),
        ("mañana", "mañana", date(2026, 11, 26), "day"),
        ("MANANA", "MANANA", date(2026, 11, 26), "day"),
        ("pasado mañana por la mañana", "pasado mañana", date(2026, 11, 27), "day"),
        ("esta semana", "esta semana", date(2026, 11, 25), "week"),
        ("la próxima semana", "la próxima semana", date(2026, 11, 30), "week"),
        ("proxima semana", "proxima semana", date(2026, 11, 30), "week"),
        ("la semana que viene", "la semana que viene", date(2026, 11, 30), "week"),
        ("el próximo mes", "el próximo mes", date(2026, 12, 1), "month"),
        ("el mes que viene", "el mes que viene", date(2026, 12, 1), "month"),
        ("en 2 semanas", "en 2 semanas", date(2026, 12, 9), "week"),
        ("en tres meses", "en tres meses", date(2027, 2, 25), "month"),
        ("dentro de 15 días", "dentro de 15 días", date(2026, 12, 10), "day"),
        ("a fin de mes", "a fin de mes", date(2026, 11, 30), "day"),
        ("este año", "este año", date(2026, 11, 25), "year"),
        ("el próximo año", "el próximo año", date(2027, 1, 1), "year"),
        ("en enero", "en enero", date(2027, 1, 1), "month"),
        ("para marzo", "para marzo", date(2027, 3, 1), "month"),
        ("en noviembre", "en noviembre", date(2026, 11, 25), "month"),
        ("el 15 de marzo", "el 15 de marzo", date(2027, 3, 15), "day"),
        ("el 1 de diciembre", "el 1 de diciembre", date(2026, 12, 1), "day"),
        ("15/03", "15/03", date(2027, 3, 15), "day"),
        ("el 20/12/2027", "20/12/2027", date(2027, 12, 20), "day"),
        ("The deadline is 12/15", "12/15", date(2026, 12, 15), "day"),
        ("Q3", "Q3", date(2027, 7, 1), "quarter"),
        ("Q4", "Q4", date(2026, 11, 25), "quarter"),
        ("el próximo trimestre", "el próximo trimestre", date(2027, 1, 1), "quarter"),
        ("segundo trimestre del 2027", "segundo trimestre del 2027", date(2027, 4, 1), "quarter"),
        ("next week", "next week", date(2026, 11, 30), "week"),
        ("next month", "next month", date(2026, 12, 1), "month"),
        ("next quarter", "next quarter", date(2027, 1, 1), "quarter"),
        ("in 2 weeks", "in 2 weeks", date(2026, 12, 9), "week"),
        ("in a couple of weeks", "in a couple of weeks", date(2026, 12, 9), "week"),
        ("by the end of the month", "by the end of the month", date(2026, 11, 30), "day"),
        ("in March", "in March", date(2027, 3, 1), "month"),
        ("March 15", "March 15", date(2027, 3, 15), "day"),
        ("by March 15th", "March 15th", date(2027, 3, 15), "day"),
        ("the 15th of March", "15th of March", date(2027, 3, 15), "day"),
        ("tomorrow", "tomorrow", date(2026, 11, 26), "day"),
        ("el lunes", "el lunes", date(2026, 11, 30), "day"),
        ("el próximo miércoles", "el próximo miércoles", date(2026, 12, 2), "day"),
        ("next Friday", "next Friday", date(2026, 11, 27), "day"),
        ("this weekend", "this weekend", date(2026, 11, 28), "day"),
        ("en 2027", "en 2027", date(2027, 1, 1), "year"),
        ("asap", "asap", date(2026, 11, 25), "vague"),
        ("cuanto antes", "cuanto antes", date(2026, 11, 25), "vague"),
        ("lo antes posible", "lo antes posible", date(2026, 11, 25), "vague"),
        ("no tengo prisa", "no tengo prisa", None, "vague"),
        ("no rush", "no rush", None, "vague"),
        ("no es urgente", "no es urgente", None, "vague"),
    ],
)
def test_it_reads_timelines(text: str, words: str, day: date | None, precision: str) -> None:
    assert read(text).timeline == Timeline(text=words, date=day, precision=precision)


def test_a_dated_timeline_wins_over_a_vague_one() -> None:
    timeline = read("no tengo prisa, quizá el año que viene").timeline
    assert timeline == Timeline(text="el año que viene", date=date(2027, 1, 1), precision="year")


@pytest.mark.parametrize(
    "text",
    [
        "atendemos 24/7 de lunes a viernes",
        "los lunes cerramos",
        "te escribo en la mañana",
        "hoy en día todos usan WhatsApp",
        "en 2025 vendimos poco",
        "el 31/02",
        "espero su respuesta",
        "We had 2,500 conversations last month",
        "1/2 kilo",
        "Vivo en la calle 5 de Mayo 123",
    ],
)
def test_it_does_not_read_timelines_that_are_not_there(text: str) -> None:
    assert read(text).timeline is None


# ---- name, role, company


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("me llamo Ana Pérez", "Ana Pérez"),
        ("mi nombre es José Luis García López, director", "José Luis García López"),
        ("Mi nombre es María de la Cruz", "María de la Cruz"),
        ("Hola, soy Ana, quiero info", "Ana"),
        ("Soy Ana.", "Ana"),
        ("hola soy carlos, tengo una pizzeria", "Carlos"),
        ("Hola!! soy ana 🙋‍♀️, tengo una estética", "Ana"),
        ("Soy Rosa Quispe de Textiles Andinos SAC", "Rosa Quispe"),
        ("My name is Priya Patel and I work at Contoso", "Priya Patel"),
        ("I'm Ana, the operations manager", "Ana"),
        ("Hi, this is Dr. Emily Chen from Sunrise Dental", "Emily Chen"),
        ("Hola, les habla Juan Camilo Pérez", "Juan Camilo Pérez"),
        ("Best, Daniel Brooks", "Daniel Brooks"),
    ],
)
def test_it_reads_names_only_from_explicit_forms(text: str, name: str) -> None:
    assert read(text).name == name


@pytest.mark.parametrize(
    "text",
    [
        "soy gerente de compras",
        "Soy Gerente de Compras",
        "soy de Monterrey y busco un CRM",
        "soy nuevo en esto",
        "Soy el dueño",
        "I'm interested in the enterprise plan",
        "I'm looking for something cheap",
        "Ana Pérez quiere información",
        "This is urgent",
    ],
)
def test_it_does_not_read_names_from_other_words(text: str) -> None:
    assert read(text).name == ""


@pytest.mark.parametrize(
    ("text", "role", "company"),
    [
        ("soy gerente de compras", "gerente de compras", ""),
        ("Soy gerente de ventas de Acme", "gerente de ventas", "Acme"),
        ("trabajo como contadora en Acme", "contadora", "Acme"),
        ("Hola, soy Ana Pérez, gerente de compras en Acme", "gerente de compras", "Acme"),
        (
            "soy la directora de marketing de Café Andino SAS",
            "directora de marketing",
            "Café Andino SAS",
        ),
        ("gerente general de Logística Express", "", ""),
        (
            "Les habla Juan, gerente general de Logística Express.",
            "gerente general",
            "Logística Express",
        ),
        ("I'm the CTO", "CTO", ""),
        ("I'm the CTO at Acme Corp", "CTO", "Acme Corp"),
        ("I am the head of customer success at Initech", "head of customer success", "Initech"),
        ("I work at Initech as a marketing manager", "marketing manager", "Initech"),
        ("I'm Tom, owner of Tom's Bakery.", "owner", "Tom's Bakery"),
        ("This is Mike from Northwind Traders", "", "Northwind Traders"),
        ("trabajo en Distribuidora López", "", "Distribuidora López"),
        ("de la empresa Dulces Típicos", "", "Dulces Típicos"),
        ("Trabajo en el área de logística de Alicorp", "", "Alicorp"),
        ("director comercial de Grupo Ficticio S.A. de C.V. Les dejo mi correo", "", ""),
        (
            "Soy director comercial de Grupo Ficticio S.A. de C.V. Les dejo mi correo",
            "director comercial",
            "Grupo Ficticio S.A. de C.V.",
        ),
        ("trabajo en ventas", "", ""),
        ("trabajo en Monterrey", "", ""),
        ("I'm Ana from Mexico", "", ""),
    ],
)
def test_it_reads_role_and_company_only_when_explicit(text: str, role: str, company: str) -> None:
    extraction = read(text)
    assert (extraction.role, extraction.company) == (role, company)


def test_it_reads_every_field_of_one_message() -> None:
    text = (
        "Hola, soy Laura Méndez, gerente de compras en Abarrotes El Sol. Tenemos un presupuesto "
        "de 15 mil pesos al mes y lo necesitamos para la próxima semana. Mi cel: 55 4321 9876, "
        "correo laura@abarroteselsol.mx"
    )
    assert read(text, "MX") == Extraction(
        email="laura@abarroteselsol.mx",
        phone="+525543219876",
        budget=Budget(amount=Decimal("15000"), currency="MXN"),
        timeline=Timeline(text="la próxima semana", date=date(2026, 11, 30), precision="week"),
        name="Laura Méndez",
        role="gerente de compras",
        company="Abarrotes El Sol",
    )


def test_a_message_with_nothing_to_read_gives_an_empty_extraction() -> None:
    assert read("Hola, ¿cuál es su horario? 😊", "MX") == Extraction()
    assert read("", "MX") == Extraction()


def test_it_is_fast_on_a_500_character_message() -> None:
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    text = " ".join(item["text"] for item in items)[:500]
    read(text, "MX")
    started = time.perf_counter()
    for _ in range(20):
        read(text, "MX")
    # the bench measures about 0.6 ms; this bound only catches a pathological regex
    assert (time.perf_counter() - started) / 20 < 0.01


# ---- time zones


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("America/Mexico_City", "MX"),
        ("America/Tijuana", "MX"),
        ("America/Bogota", "CO"),
        ("America/Argentina/Buenos_Aires", "AR"),
        ("America/Santiago", "CL"),
        ("America/Lima", "PE"),
        ("America/Montevideo", "UY"),
        ("America/Sao_Paulo", "BR"),
        ("America/Santo_Domingo", "DO"),
        ("America/Guayaquil", "EC"),
        ("Europe/Madrid", "ES"),
        ("Atlantic/Canary", "ES"),
        ("America/New_York", "US"),
        ("America/Indiana/Indianapolis", "US"),
        ("Pacific/Honolulu", "US"),
        ("Europe/Paris", ""),
        ("", ""),
        ("Not/AZone", ""),
    ],
)
def test_it_maps_time_zones_to_regions(zone: str, region: str) -> None:
    assert region_for_time_zone(zone) == region


# ---- the labelled set

FIELDS = ("email", "phone", "budget", "timeline", "name", "role", "company")


def _observed(extraction: Extraction, field: str) -> Any:
    if field == "budget":
        budget = extraction.budget
        return None if budget is None else {"amount": budget.amount, "currency": budget.currency}
    if field == "timeline":
        timeline = extraction.timeline
        if timeline is None:
            return None
        iso = timeline.date.isoformat() if timeline.date else None
        return {"date": iso, "precision": timeline.precision}
    return getattr(extraction, field) or None


def _labelled(expected: dict[str, Any], field: str) -> Any:
    value = expected[field]
    if field == "budget" and value is not None:
        return {"amount": Decimal(value["amount"]), "currency": value["currency"]}
    return value or None


def test_the_labelled_set_is_large_and_mixed() -> None:
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len(items) >= 120
    assert sum(item["language"] == "es" for item in items) >= 60
    assert sum(item["language"] == "en" for item in items) >= 50
    for item in items:
        assert set(item["expected"]) == set(FIELDS)


def test_the_labelled_set_keeps_precision_and_recall_per_field() -> None:
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    tp = dict.fromkeys(FIELDS, 0)
    fp = dict.fromkeys(FIELDS, 0)
    fn = dict.fromkeys(FIELDS, 0)
    for item in items:
        extraction = read(item["text"], item["region"])
        for field in FIELDS:
            got, want = _observed(extraction, field), _labelled(item["expected"], field)
            if got is not None and got == want:
                tp[field] += 1
                continue
            fp[field] += got is not None
            fn[field] += want is not None
    precision = {f: tp[f] / (tp[f] + fp[f]) if tp[f] + fp[f] else 1.0 for f in FIELDS}
    recall = {f: tp[f] / (tp[f] + fn[f]) if tp[f] + fn[f] else 1.0 for f in FIELDS}
    assert {f: p for f, p in precision.items() if p < 0.9} == {}
    assert {f: r for f, r in recall.items() if r < 0.8} == {}
