"""The U-Net: shapes in 2-D and 3-D, registry, input checks."""

from __future__ import annotations

import pytest
import torch

from asymtune.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize(("dims", "shape"), [(2, (2, 1, 16, 16)), (3, (1, 2, 8, 8, 8))])
def test_every_model_maps_images_to_logits(name: str, dims: int, shape: tuple[int, ...]) -> None:
    model = create_model(name, dims, shape[1], 3, base_channels=4, depth=3)
    assert model(torch.randn(shape)).shape == (shape[0], 3, *shape[2:])


def test_indivisible_input_is_refused() -> None:
    model = create_model("unet", 2, 1, 2, base_channels=4, depth=3)
    with pytest.raises(ValueError, match=r"\(18, 18\) is not divisible by 4"):
        model(torch.zeros(1, 1, 18, 18))


def test_unknown_model_and_option() -> None:
    with pytest.raises(ValueError, match="model.name='vnet'"):
        create_model("vnet", 2, 1, 2)
    with pytest.raises(ValueError, match="invalid options"):
        create_model("unet", 2, 1, 2, width=3)


def test_dynunet_levels_follow_depth_and_base_channels() -> None:
    model = create_model("dynunet", 3, 1, 2, base_channels=4, depth=3, max_channels=12)
    assert model.filters == [4, 8, 12]
    with pytest.raises(ValueError, match="model.depth=2: expected an integer >= 3 for dynunet"):
        create_model("dynunet", 2, 1, 2, depth=2)
