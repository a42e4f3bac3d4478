"""The VGG16 feature extractor and the Caffe pixels it takes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from model.errors import WeightsError
from model.network import MaxPool2x2, build_extractor, deprocess, pixel_bounds, preprocess
from model.weights import VGG16_KERNEL_SHAPES, VGG16_LAYERS, bundled_vgg16_path, load_vgg16


@pytest.fixture(scope="module")
def weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return load_vgg16(bundled_vgg16_path())


def test_preprocess_is_caffe_bgr_minus_the_imagenet_mean() -> None:
    pixel = np.array([[[10, 20, 30]]], np.uint8)  # R, G, B

    pixels = preprocess(pixel)

    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, [[[30 - 103.939, 20 - 116.779, 10 - 123.68]]], rtol=1e-6)


def test_deprocess_undoes_preprocess_and_clips() -> None:
    image = np.random.default_rng(0).integers(0, 256, (3, 4, 3), dtype=np.uint8)

    assert np.array_equal(deprocess(preprocess(image)), image)
    low, high = pixel_bounds()
    assert deprocess(np.stack([low - 50, high + 50])[np.newaxis]).tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_the_network_stops_at_the_deepest_layer_asked_for(weights: dict) -> None:
    extractor = build_extractor(weights, ("block3_conv1", "block1_conv2"))

    convolutions = [layer.name for layer in extractor.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions == list(VGG16_LAYERS[: VGG16_LAYERS.index("block3_conv1") + 1])


def test_the_activations_come_out_in_the_order_asked_for_at_their_scales(weights: dict) -> None:
    pixels = preprocess(np.full((1, 36, 52, 3), 128, np.uint8))

    deep, shallow = extractor_outputs = build_extractor(weights, ("block4_conv2", "block1_conv1"))(pixels)

    assert len(extractor_outputs) == 2
    assert tuple(deep.shape) == (1, 5, 7, 512)  # 36x52 halved three times, rounding up as Caffe
    assert tuple(shallow.shape) == (1, 36, 52, 64)
    assert np.min(keras.ops.convert_to_numpy(shallow)) >= 0  # after the ReLU


@pytest.mark.parametrize("shape", [(1, 8, 10, 3), (2, 7, 9, 4), (1, 5, 6, 2), (1, 1, 1, 3), (1, 3, 1, 2)])
def test_our_pooling_gives_keras_values_and_gradients_eagerly_and_compiled_for_one_or_any_size(
    shape: tuple[int, ...],
) -> None:
    tf = pytest.importorskip("tensorflow")
    # Signed values: the layer must not lean on the ReLU before it to pad odd sizes.
    pixels = tf.constant(np.random.default_rng(1).normal(size=shape).astype(np.float32))

    def pooled_and_gradient(layer: keras.layers.Layer, x: object) -> tuple[object, object]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            pooled = layer(x)
            loss = tf.reduce_sum(pooled * pooled * np.linspace(0.5, 2, pooled.shape[-1], dtype=np.float32))
        return pooled, tape.gradient(loss, x)

    expected, expected_gradient = pooled_and_gradient(keras.layers.MaxPooling2D(2, padding="same"), pixels)
    ours = MaxPool2x2()
    compiled = tf.function(lambda x: pooled_and_gradient(ours, x), jit_compile=True)
    # Traced for any size (as the renderer's loss is), as a graph and XLA-compiled.
    any_size = [tf.TensorSpec((None, None, None, shape[-1]), tf.float32)]
    graph = tf.function(lambda x: pooled_and_gradient(ours, x), input_signature=any_size)
    compiled_any_size = tf.function(lambda x: pooled_and_gradient(ours, x), input_signature=any_size, jit_compile=True)
    for pooled, gradient in (
        pooled_and_gradient(ours, pixels), compiled(pixels), graph(pixels), compiled_any_size(pixels)
    ):
        assert np.array_equal(pooled, expected)
        assert np.array_equal(gradient, expected_gradient)


def test_the_weights_are_the_ones_given(weights: dict) -> None:
    extractor = build_extractor(weights, ("block1_conv1",))

    kernel, bias = extractor.get_layer("block1_conv1").get_weights()
    assert np.array_equal(kernel, weights["block1_conv1"][0])
    assert np.array_equal(bias, weights["block1_conv1"][1])


def test_in_bfloat16_the_network_computes_in_bfloat16_from_float32_weights_to_the_same_features(weights: dict) -> None:
    rng = np.random.default_rng(0)
    pixels = preprocess(rng.integers(0, 256, (1, 40, 48, 3), dtype=np.uint8))
    layers = ("block1_conv1", "block3_conv1")

    half = build_extractor(weights, layers, precision="bfloat16")
    full = build_extractor(weights, layers)

    assert {layer.compute_dtype for layer in half.layers[1:]} == {"bfloat16"}
    assert {layer.variable_dtype for layer in half.layers[1:]} == {"float32"}
    for ours, exact in zip(half(pixels), full(pixels)):
        assert keras.backend.standardize_dtype(ours.dtype) == "bfloat16"
        ours, exact = (keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")) for x in (ours, exact))
        # bfloat16 keeps 8 bits of mantissa: each activation within about 1% of its scale.
        assert np.abs(ours - exact).mean() < 0.01 * np.abs(exact).mean()


def test_an_unknown_precision_is_refused(weights: dict) -> None:
    with pytest.raises(ValueError, match="precision must be float32 or bfloat16, got: 'float16'"):
        build_extractor(weights, ("block1_conv1",), precision="float16")


def test_missing_or_misshapen_weights_are_named(weights: dict) -> None:
    partial = {name: weights[name] for name in VGG16_LAYERS[:3]}
    with pytest.raises(WeightsError, match="no block2_conv2 layer"):
        build_extractor(partial, ("block3_conv1",))

    kernel, bias = weights["block1_conv2"]
    wrong = dict(weights, block1_conv2=(kernel[..., :32], bias[:32]))
    with pytest.raises(WeightsError, match=r"block1_conv2 weights have shapes \(3, 3, 64, 32\)"):
        build_extractor(wrong, ("block1_conv2",))
    assert VGG16_KERNEL_SHAPES["block1_conv2"] == (3, 3, 64, 64)
