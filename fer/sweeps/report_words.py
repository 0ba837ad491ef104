"""The report's words in each language it is written in (`report.lang`): headings, the generated answers and the
labels of its tables. One dict per language with the same keys; numbers are filled in by fer/sweeps/report.py.
Traditional Chinese because the homework is handed in in it."""

from __future__ import annotations

EN = {
    "title": "fer report — {title}",
    "intro": "{runs} runs in {configs} configurations, {done} with test results; tracking store {uri}.",
    "fer2013": "Test accuracy is against the data's own label, one per face.",
    "ferplus": "FER+ runs (data=ferplus): test accuracy is against the majority of the ten annotators' votes, and "
               "test_any_vote_acc (in each run) is the share of predictions that at least one annotator voted for.",
    "noise_note": "Intervals are 95 % intervals of a difference in test accuracy: the test faces as a sample (n faces "
                  "per run) and, where a configuration ran with several seeds, the spread between them.",
    "runs_table": "Every run",
    "configs_table": "Configurations (runs that differ only by seed are grouped: mean ± std over n)",
    "h1": "1. The CNN: architecture, parameters and accuracy",
    "h2": "2. A DNN of the same size",
    "h3": "3. Normalization and augmentation",
    "h4": "4. Confusion matrix",
    "h5": "5. Saliency maps",
    "h6": "6. What a layer's filters respond to",
    "acc_one": "{acc:.1f} %",
    "acc_many": "{acc:.1f} ± {std:.1f} % (n={n})",
    "cnn_answer": "The CNN is {arch} with {params:,} parameters. Its best configuration, {label}, reaches a test "
                  "accuracy of {acc} after {epochs} epochs (best validation accuracy {val:.1f} %).",
    "dnn_answer": "The DNN of the same size has {d_params:,} parameters ({ratio:.2f}× the CNN's {c_params:,}) and "
                  "reaches {d_acc}, {gap:.1f} points {side} the CNN's {c_acc}: {noise}. An epoch takes it {time}.",
    "below": "below",
    "above": "above",
    "time": "{ratio:.2f}× the CNN's time ({d:.2f} s against {c:.2f} s)",
    "time_unknown": "an unknown time (too few epochs to time)",
    "within": "a difference within noise (95 % interval {lo:+.1f} to {hi:+.1f} points)",
    "real": "a real difference (95 % interval {lo:+.1f} to {hi:+.1f} points)",
    "norm_effect": "{new} normalization instead of {old} changes the test accuracy by {d:+.1f} points ({noise})",
    "aug_effect": "{new} augmentation instead of {old} changes it by {d:+.1f} points ({noise})",
    "normaug_answer": "For {model}: {effects}. The best combination is norm={norm}, aug={aug} at {acc}.",
    "table_caption": "{model}: test accuracy (rows: normalization, columns: augmentation)",
    "confusion_answer": "{name} recognizes {top} best ({top_acc:.1f} % of its test faces) and {low} worst "
                        "({low_acc:.1f} %). It most often takes {true} for {pred} ({share:.1f} % of the {true} "
                        "faces).",
    "any_vote": "Against the votes: {acc:.1f} % of the test faces get their majority label, and {any:.1f} % a class "
                "at least one annotator chose.",
    "saliency_masks": "On {name}, attribution concentrates on the class-deciding regions: {ratios} times their share "
                      "of the face (1 would be spread like the area).",
    "saliency_plain": "{k} methods ({methods}) show where {name} looks for the class it predicts; the data has no "
                      "region masks to score them, so the figures are the evidence: bright where the decision was "
                      "made.",
    "filters_answer": "{k} figures show, by gradient ascent, the input each filter of {name}'s conv layers responds "
                      "to most, and {m} show one face passed through {layers}.",
    "architecture": "Architecture of {model} ({runs})",
    "curves": "{name}: accuracy and loss per epoch",
    "more_figures": "{n} more figures",
    "pairs": "The most confused pairs",
    "missing": "Missing: ",
    "no_cnn": "no finished CNN run ({models})",
    "no_dnn": "no DNN run here: python -m fer.train -m experiment=cnn_vs_dnn",
    "no_peer": "no CNN beside {name} to compare it with",
    "no_ablation": "no model was run with two normalizations or two augmentations: "
                   "python -m fer.train -m experiment=ablation",
    "no_run": "no finished run",
    "no_figures": "no {folder}/ figures in run {run} (trained with explain=none?)",
    "no_artifact": "{path} of run {run}",
    "col_config": "configuration",
    "col_n": "n",
    "col_test": "test acc",
    "col_val": "best val acc",
    "col_params": "parameters",
    "col_sec": "s/epoch",
    "col_run": "run",
}

ZH_TW = {
    "title": "fer 實驗報告 — {title}",
    "intro": "共 {runs} 次訓練、{configs} 種設定，其中 {done} 次有測試結果；追蹤資料庫：{uri}。",
    "fer2013": "測試準確率以資料本身的標籤計算，每張臉一個標籤。",
    "ferplus": "FER+ 訓練（data=ferplus）：測試準確率以十位標註者的多數票計算；各次訓練中的 test_any_vote_acc "
               "是預測類別至少獲得一位標註者投票的比例。",
    "noise_note": "信賴區間為測試準確率差異的 95% 區間：把測試臉孔視為樣本（每次訓練 n 張），若同一設定以多個隨機種子"
                  "訓練，也計入種子之間的差異。",
    "runs_table": "所有訓練",
    "configs_table": "設定（只差在隨機種子的訓練合併為一組：平均 ± 標準差，n 次）",
    "h1": "1. 卷積神經網路（CNN）：架構、參數量與準確率",
    "h2": "2. 參數量相同的深度神經網路（DNN）",
    "h3": "3. 正規化與資料增強",
    "h4": "4. 混淆矩陣",
    "h5": "5. 顯著圖（Saliency map）",
    "h6": "6. 卷積層的濾波器對什麼有反應",
    "acc_one": "{acc:.1f}%",
    "acc_many": "{acc:.1f} ± {std:.1f}%（n={n}）",
    "cnn_answer": "CNN 為 {arch}，共 {params:,} 個參數。最佳設定 {label} 訓練 {epochs} 個 epoch 後，測試準確率為 "
                  "{acc}（最佳驗證準確率 {val:.1f}%）。",
    "dnn_answer": "參數量相同的 DNN 有 {d_params:,} 個參數（為 CNN {c_params:,} 個的 {ratio:.2f} 倍），測試準確率 "
                  "{d_acc}，比 CNN 的 {c_acc} {side} {gap:.1f} 個百分點：{noise}。每個 epoch 花費 {time}。",
    "below": "低",
    "above": "高",
    "time": "CNN 的 {ratio:.2f} 倍時間（{d:.2f} 秒對 {c:.2f} 秒）",
    "time_unknown": "的時間無法得知（epoch 太少，無法計時）",
    "within": "差異在雜訊範圍內（95% 信賴區間 {lo:+.1f} 至 {hi:+.1f} 個百分點）",
    "real": "差異顯著（95% 信賴區間 {lo:+.1f} 至 {hi:+.1f} 個百分點）",
    "norm_effect": "以 {new} 正規化取代 {old}，測試準確率變化 {d:+.1f} 個百分點（{noise}）",
    "aug_effect": "以 {new} 資料增強取代 {old}，變化 {d:+.1f} 個百分點（{noise}）",
    "normaug_answer": "{model}：{effects}。最佳組合為 norm={norm}、aug={aug}，測試準確率 {acc}。",
    "table_caption": "{model}：測試準確率（列：正規化，欄：資料增強）",
    "confusion_answer": "{name} 最能辨識 {top}（測試臉孔的 {top_acc:.1f}%），最難辨識 {low}（{low_acc:.1f}%）。"
                        "最常把 {true} 誤判為 {pred}（{true} 臉孔的 {share:.1f}%）。",
    "any_vote": "以投票計：{acc:.1f}% 的測試臉孔得到多數票的標籤，{any:.1f}% 得到至少一位標註者選的類別。",
    "saliency_masks": "在 {name} 上，歸因集中於決定類別的區域：為該區域面積比例的 {ratios} 倍（1 表示與面積同比例）。",
    "saliency_plain": "{k} 種方法（{methods}）顯示 {name} 為預測類別看了臉的哪些地方；資料沒有區域遮罩可供評分，"
                      "因此以圖為證：越亮處越是判斷的依據。",
    "filters_answer": "{k} 張圖以梯度上升呈現 {name} 各卷積層濾波器最強烈反應的輸入，{m} 張圖呈現一張臉經過 {layers} "
                      "後的輸出。",
    "architecture": "{model} 的架構（{runs}）",
    "curves": "{name}：每個 epoch 的準確率與損失",
    "more_figures": "另外 {n} 張圖",
    "pairs": "最常混淆的類別組合",
    "missing": "缺少：",
    "no_cnn": "沒有完成的 CNN 訓練（{models}）",
    "no_dnn": "這裡沒有 DNN 訓練：python -m fer.train -m experiment=cnn_vs_dnn",
    "no_peer": "沒有可與 {name} 比較的 CNN",
    "no_ablation": "沒有任何模型以兩種正規化或兩種資料增強訓練：python -m fer.train -m experiment=ablation",
    "no_run": "沒有完成的訓練",
    "no_figures": "訓練 {run} 沒有 {folder}/ 圖（以 explain=none 訓練？）",
    "no_artifact": "訓練 {run} 的 {path}",
    "col_config": "設定",
    "col_n": "n",
    "col_test": "測試準確率",
    "col_val": "最佳驗證準確率",
    "col_params": "參數量",
    "col_sec": "秒/epoch",
    "col_run": "訓練",
}

WORDS = {"en": EN, "zh-TW": ZH_TW}
CLASS_NAMES = {"zh-TW": {"Angry": "生氣", "Disgust": "厭惡", "Fear": "恐懼", "Happy": "開心", "Sad": "難過",
                         "Surprise": "驚訝", "Neutral": "中性", "Contempt": "輕蔑"}}
