"""The Market resource (`markets.exchange.dev/v1alpha1`) and the integer rules derived from it.

`Market` validates a manifest exactly as the CRD does; `MarketRules` is what the engine needs:
every amount already converted to integer ticks, lots and minor units.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xch.money import AmountError, minor_unit, parse_decimal, product, to_units, units_per

API_GROUP = "exchange.dev"
API_VERSION = "v1alpha1"
KIND = "Market"

ASSET_PATTERN = r"^[A-Z][A-Z0-9]{1,9}$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
INTERVAL_PATTERN = r"^[1-9][0-9]*[mhdw]$"


class Trading(StrEnum):
    ENABLED = "Enabled"
    CANCEL_ONLY = "CancelOnly"
    HALTED = "Halted"


class OnDelete(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class AssetSpec(_Model):
    asset: str = Field(pattern=ASSET_PATTERN)
    scale: int = Field(ge=0, le=18)


class Fees(_Model):
    maker_bps: int = Field(default=10, ge=0, le=1000, alias="makerBps")
    taker_bps: int = Field(default=20, ge=0, le=1000, alias="takerBps")


class Klines(_Model):
    intervals: tuple[str, ...] = ("1m", "5m", "1h", "1d")

    @field_validator("intervals")
    @classmethod
    def _known_intervals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for interval in value:
            if not re.fullmatch(INTERVAL_PATTERN, interval):
                raise ValueError(f"bad kline interval {interval!r}")
        if len(set(value)) != len(value):
            raise ValueError("kline intervals must be unique")
        return value


class MarketMaker(_Model):
    """The market maker's quoting: `levels` orders a side, the innermost `spreadBps` apart
    around the fair price (widened with volatility up to `maxSpreadBps`), each further level
    `levelSpacingBps` out, the innermost `orderSize` (base; the smallest size above
    minNotional if unset) and each further one `sizeGrowthPct` of it more, holding at most
    `maxInventory` base, requoting every `refreshMs`. docs/market-maker.md has the model."""

    enabled: bool = False
    spread_bps: int = Field(default=20, ge=1, le=5000, alias="spreadBps")
    levels: int = Field(default=5, ge=1, le=50)
    level_spacing_bps: int = Field(default=10, ge=1, le=5000, alias="levelSpacingBps")
    order_size: str | None = Field(default=None, pattern=DECIMAL_PATTERN, alias="orderSize")
    max_inventory: str | None = Field(default=None, pattern=DECIMAL_PATTERN, alias="maxInventory")
    reference_price: str | None = Field(
        default=None, pattern=DECIMAL_PATTERN, alias="referencePrice"
    )
    # Optional without a default, so that older manifests (and the CRD's defaulting) stay
    # as they were: mm.strategy.Params fills in what is unset.
    max_spread_bps: int | None = Field(default=None, ge=1, le=5000, alias="maxSpreadBps")
    size_growth_pct: int | None = Field(default=None, ge=0, le=1000, alias="sizeGrowthPct")
    refresh_ms: int | None = Field(default=None, ge=100, le=60_000, alias="refreshMs")


class EngineSpec(_Model):
    resources: dict[str, Any] = Field(default_factory=dict)
    snapshot_every: int = Field(default=10_000, ge=100, alias="snapshotEvery")
    # A warm standby: a second engine Pod waiting for the lease (the operator's concern, not
    # the engine's). Left out of every dump, so the manifest and the registry entry engines
    # read (older engines refuse unknown fields) and the engine's config hash stay as they were.
    standby: bool = Field(default=False, exclude=True)


class Retention(_Model):
    on_delete: OnDelete = Field(default=OnDelete.RETAIN, alias="onDelete")


class MarketSpec(_Model):
    base: AssetSpec
    quote: AssetSpec
    tick_size: str = Field(alias="tickSize", pattern=DECIMAL_PATTERN)
    lot_size: str = Field(alias="lotSize", pattern=DECIMAL_PATTERN)
    min_notional: str = Field(default="0", alias="minNotional", pattern=DECIMAL_PATTERN)
    fees: Fees = Field(default_factory=Fees)
    trading: Trading = Trading.ENABLED
    klines: Klines = Field(default_factory=Klines)
    market_maker: MarketMaker = Field(default_factory=MarketMaker, alias="marketMaker")
    engine: EngineSpec = Field(default_factory=EngineSpec)
    retention: Retention = Field(default_factory=Retention)

    @model_validator(mode="after")
    def _units_are_whole(self) -> Self:
        if self.base.asset == self.quote.asset:
            raise ValueError("base and quote must be different assets")
        tick, lot = parse_decimal(self.tick_size), parse_decimal(self.lot_size)
        if tick <= 0 or lot <= 0:
            raise ValueError("tickSize and lotSize must be positive")
        try:
            units_per(lot, minor_unit(self.base.scale))
        except AmountError as exc:
            raise ValueError(
                f"lotSize must be a whole number of {self.base.asset} minor units"
            ) from exc
        try:
            units_per(product(tick, lot), minor_unit(self.quote.scale))
        except AmountError as exc:
            raise ValueError(
                f"tickSize x lotSize must be a whole number of {self.quote.asset} minor units"
            ) from exc
        try:
            to_units(self.min_notional, minor_unit(self.quote.scale))
        except AmountError as exc:
            raise ValueError(
                f"minNotional must be a whole number of {self.quote.asset} minor units"
            ) from exc
        self._market_maker_amounts_fit(lot)
        return self

    def _market_maker_amounts_fit(self, lot: Decimal) -> None:
        size, inventory = self.market_maker.order_size, self.market_maker.max_inventory
        try:
            if size is not None and to_units(size, lot) == 0:
                raise ValueError("marketMaker.orderSize must be positive")
        except AmountError as exc:
            raise ValueError("marketMaker.orderSize must be a whole number of lots") from exc
        try:
            if inventory is not None:
                to_units(inventory, minor_unit(self.base.scale))
        except AmountError as exc:
            raise ValueError(
                f"marketMaker.maxInventory must be a whole number of {self.base.asset} minor units"
            ) from exc


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    namespace: str | None = None


class Market(_Model):
    """A Market manifest: `apiVersion`, `kind`, `metadata`, `spec` (status is ignored)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)
    api_version: Literal["exchange.dev/v1alpha1"] = Field(
        default="exchange.dev/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Market"] = "Market"
    metadata: Metadata
    spec: MarketSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    def rules(self) -> "MarketRules":
        return MarketRules.from_spec(self.name, self.spec)

    def registry_entry(self) -> str:
        """The market's value in the registry hash `xch:markets` (JSON of name and spec)."""
        return json.dumps(
            {"name": self.name, "spec": self.spec.model_dump(mode="json", by_alias=True)},
            sort_keys=True,
        )

    @classmethod
    def from_registry_entry(cls, entry: str | bytes) -> "Market":
        data = json.loads(entry)
        return cls.model_validate({"metadata": {"name": data["name"]}, "spec": data["spec"]})


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's spec as the engine uses it: integers only (except the Decimal unit sizes)."""

    name: str
    base: str
    quote: str
    base_scale: int
    quote_scale: int
    tick: Decimal
    lot: Decimal
    base_per_lot: int
    quote_per_tick_lot: int
    min_notional: int
    maker_bps: int
    taker_bps: int
    trading: Trading

    @classmethod
    def from_spec(cls, name: str, spec: MarketSpec) -> "MarketRules":
        tick, lot = parse_decimal(spec.tick_size), parse_decimal(spec.lot_size)
        return cls(
            name=name,
            base=spec.base.asset,
            quote=spec.quote.asset,
            base_scale=spec.base.scale,
            quote_scale=spec.quote.scale,
            tick=tick,
            lot=lot,
            base_per_lot=units_per(lot, minor_unit(spec.base.scale)),
            quote_per_tick_lot=units_per(product(tick, lot), minor_unit(spec.quote.scale)),
            min_notional=to_units(spec.min_notional, minor_unit(spec.quote.scale)),
            maker_bps=spec.fees.maker_bps,
            taker_bps=spec.fees.taker_bps,
            trading=spec.trading,
        )

    def price_to_ticks(self, text: str) -> int:
        return to_units(text, self.tick)

    def qty_to_lots(self, text: str) -> int:
        return to_units(text, self.lot)

    def base_to_minor(self, text: str) -> int:
        return to_units(text, minor_unit(self.base_scale))

    def quote_to_minor(self, text: str) -> int:
        return to_units(text, minor_unit(self.quote_scale))
