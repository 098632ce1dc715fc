import pytest
from pydantic import ValidationError

from npsloop.shared.taxonomy import DEFAULT_THEMES, TaxonomyError, ThemeDefinition, validate_taxonomy

DEFAULT_IDS = {
    "product_quality",
    "support_experience",
    "pricing",
    "missing_features",
    "ease_of_use",
    "performance_reliability",
    "onboarding_communication",
    "delivery_logistics",
}


def test_default_themes_have_the_documented_ids():
    assert {t.id for t in DEFAULT_THEMES} == DEFAULT_IDS
    assert validate_taxonomy(DEFAULT_THEMES) == DEFAULT_THEMES


def test_theme_from_yaml_like_dict():
    themes = validate_taxonomy([{"id": "mobile_app", "description": "The phone app and its screens"}])
    assert themes[0].id == "mobile_app" and themes[0].keywords == [] and themes[0].label is None


def test_keywords_alone_are_enough():
    assert ThemeDefinition(id="loyalty", description="", keywords=["points"]).keywords == ["points"]


@pytest.mark.parametrize("bad_id", ["Mobile", "1st", "with space", "dash-id", ""])
def test_id_must_be_a_slug(bad_id):
    with pytest.raises(ValidationError, match="slug"):
        ThemeDefinition(id=bad_id, description="something")


def test_theme_needs_some_content():
    with pytest.raises(ValidationError, match="at least one of description, keywords or examples"):
        ThemeDefinition(id="empty_theme", description="  ", keywords=[" "])


def test_duplicate_ids_are_rejected_with_a_clear_message():
    with pytest.raises(TaxonomyError, match="duplicate theme id 'pricing'.*themes\\[0\\]"):
        validate_taxonomy([{"id": "pricing", "keywords": ["cost"]}, {"id": "pricing", "keywords": ["fee"]}])


def test_invalid_dict_names_the_theme_and_field():
    with pytest.raises(TaxonomyError, match="themes\\[1\\] \\(Bad Id\\).*id"):
        validate_taxonomy([{"id": "ok", "keywords": ["x"]}, {"id": "Bad Id", "keywords": ["y"]}])
