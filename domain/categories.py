"""The fixed list of activity categories (服务类别) used across the network."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    THEORY = "theory"  # 理论宣讲 theory talks
    CULTURE_SPORTS = "culture_sports"  # 文化体育 culture and sports
    SCIENCE = "science"  # 科学普及 science popularisation
    HEALTH = "health"  # 卫生健康 health
    LEGAL_AID = "legal_aid"  # 法律援助 legal aid
    ELDERLY_DISABLED = "elderly_disabled"  # 助老助残 elderly and disabled care
    ENVIRONMENT = "environment"  # 生态环保 environment
    CONVENIENCE = "convenience"  # 便民服务 convenience services
    CIVILITY = "civility"  # 文明风尚 civility


CATEGORY_LABELS: dict[Category, str] = {
    Category.THEORY: "理论宣讲",
    Category.CULTURE_SPORTS: "文化体育",
    Category.SCIENCE: "科学普及",
    Category.HEALTH: "卫生健康",
    Category.LEGAL_AID: "法律援助",
    Category.ELDERLY_DISABLED: "助老助残",
    Category.ENVIRONMENT: "生态环保",
    Category.CONVENIENCE: "便民服务",
    Category.CIVILITY: "文明风尚",
}
