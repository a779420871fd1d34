"""Reading ``/metrics`` as Prometheus reads it (``text_string_to_metric_families``)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape, looked up by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls(
            {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
        )

    @classmethod
    def of(cls, metrics: Metrics) -> Scrape:
        return cls.parse(metrics.render().decode())

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when it is absent (a counter never incremented)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over the samples of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            value
            for (found, have), value in self.samples.items()
            if found == name and wanted <= have
        )

    def labels(self, name: str, label: str) -> set[str]:
        """Every value ``label`` takes among the samples of ``name``."""
        return {
            dict(have)[label]
            for (found, have), _ in self.samples.items()
            if found == name and label in dict(have)
        }
